// Every backend's test harness: the suites run over this list (or the part of it whose
// capabilities they need). Adding a backend adds a harness file and a line here.
import type { Harness } from "./harness";
import { file } from "./file";
import { mongodb } from "./mongodb";
import { postgres } from "./postgres";
import { redis } from "./redis";
import { s3 } from "./s3";
import { sqlite } from "./sqlite";

export type { Harness, Place } from "./harness";

export const BACKENDS: readonly Harness[] = [file, sqlite, redis, postgres, mongodb, s3];
