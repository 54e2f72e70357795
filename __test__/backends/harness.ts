// What every backend's test harness gives the suites (keyv's shape: suites are functions run over
// the list in index.ts). A backend is one harness file and one line in that list.

/** A fresh place for one test's documents on one backend. */
export interface Place {
  /** A class over this place, with `options` added (encryption among them). */
  create(options?: object): any;
  /** The same place as a store URL, for child processes (`createPersist(url)`), and the
   * environment variables its credentials need. */
  url: string;
  env: Record<string, string>;
  /** A directory to make base directories under: stores whose `baseDir` is under it are this
   * place's (the file backend keeps their documents there; the others only name it). */
  root: string;
  /** The `baseDir` stores of this place use for namespace `ns` (the file backend: under its root). */
  baseDir(ns: string): string;
  /** The stored text of (namespace, entity, id), read without our classes; null when absent. */
  get(ns: string, entity: string, id: string): Promise<string | null>;
  /** Replace a stored text behind our classes' back (tampering, planted documents). */
  set(ns: string, entity: string, id: string, text: string): Promise<void>;
  /** Everything stored, as text: to search for plaintext and to compare before and after. */
  dump(): Promise<string>;
  /** What a crash must not leave behind (documents moved aside, a damaged database), read
   * without our classes: a line per problem found, none when the place is whole. */
  intact(): Promise<string[]>;
  /** Close the classes made and remove what the place holds. */
  cleanup(): Promise<void>;
}

export interface Harness {
  /** The registry's name of the backend. */
  name: "file" | "sqlite" | "redis" | "postgres" | "mongodb" | "s3";
  /** What the backend can do that suites depend on. */
  capabilities: {
    /** It talks to a server the test harness starts (outage tests apply). */
    server: boolean;
    /** The longest id the test server can hold, when it is less than the 232 bytes every
     * backend accepts (s3s-fs names a file after the base64 of the whole key). */
    longestId?: number;
  };
  /** Option sets that change how the backend works inside (where reads run), by name: the
   * conformance suite runs once with each as well as with the defaults. */
  variants?: Record<string, object>;
  /** A fresh place under `root` (a temp directory the suite owns). */
  open(root: string): Promise<Place>;
}

export const uniqueName = (tag: string) => `${tag}_${Math.random().toString(36).slice(2, 10)}${Date.now().toString(36)}`;

/**
 * The classes a place makes, closed together at its clean-up: `create` adds the place's own
 * options to the caller's (which win), `close` closes every class made.
 */
export function classes(make: (options: object) => any): { create(options?: object): any; close(): Promise<void> } {
  const made: any[] = [];
  return {
    create: (options = {}) => {
      const Class = make(options);
      made.push(Class);
      return Class;
    },
    close: async () => {
      for (const Class of made) await Class.close();
    },
  };
}
