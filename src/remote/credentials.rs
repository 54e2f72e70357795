//! Credentials in connection URLs (Redis, PostgreSQL, MongoDB, an S3 endpoint): shown redacted,
//! and scrubbed from text that client libraries produce, in case it echoes them.

/// The URL with any `user:password@` replaced, for messages and logs. Everything up to the
/// last `@` is credentials, even if a password holds an unencoded `/`, `?` or `#`.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            format!("{}***{}", &url[..scheme_end + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

/// Remove the URL's credentials from text a library produced, in case it echoed them: the user
/// info followed by `@`, the password (also percent-decoded; as a whole word when shorter than
/// 4 characters, so that `a` does not blank every `a`), and the user name as a whole word of 3
/// characters or more, except Redis's built-in `default`. Empty parts match nothing.
pub fn scrub_secrets(text: &str, url: &str) -> String {
    let (Some(scheme_end), Some(at)) = (url.find("://"), url.rfind('@')) else {
        return text.to_owned();
    };
    if at <= scheme_end {
        return text.to_owned();
    }
    let user_info = &url[scheme_end + 3..at];
    let (user, password) = user_info.split_once(':').unwrap_or((user_info, ""));
    let mut scrubbed = if user_info.is_empty() {
        text.to_owned()
    } else {
        text.replace(&format!("{user_info}@"), "***@")
    };
    for secret in [password.to_owned(), percent_decode(password)] {
        scrubbed = match secret.chars().count() {
            0 => scrubbed,
            1..=3 => replace_word(&scrubbed, &secret),
            _ => scrubbed.replace(&secret, "***"),
        };
    }
    if user.chars().count() >= 3 && user != "default" {
        scrubbed = replace_word(&scrubbed, user);
        scrubbed = replace_word(&scrubbed, &percent_decode(user));
    }
    scrubbed
}

/// `word` replaced by `***` where it is not part of a longer run of letters, digits or `_`.
fn replace_word(text: &str, word: &str) -> String {
    if word.is_empty() {
        return text.to_owned();
    }
    let is_word_char = |c: char| c.is_alphanumeric() || c == '_';
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find(word) {
        let before = rest[..pos].chars().next_back();
        let after = rest[pos + word.len()..].chars().next();
        let bounded = !before.is_some_and(is_word_char) && !after.is_some_and(is_word_char);
        out.push_str(&rest[..pos]);
        out.push_str(if bounded { "***" } else { word });
        rest = &rest[pos + word.len()..];
    }
    out.push_str(rest);
    out
}

/// `%XX` escapes decoded (as a URL parser would before using the password); invalid ones kept.
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
