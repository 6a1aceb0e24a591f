//! Percent-decoding of path variables and query parameters.
//!
//! The rules are those of Envoy's `grpc_json_transcoder` (`url_unescape_spec`), which follow
//! `google/api/http.proto`: a client percent-encodes variable values, the gateway reverses it.
//! Unlike Envoy, a malformed escape (`%zz`, a lone `%`) or bytes that are not UTF-8 after
//! decoding are an error rather than passed through: the value feeds a protobuf `string` field,
//! and the gateway answers 400 instead of sending garbage to the backend.

use std::fmt;

/// How much of a multi-segment path variable (`{name=shelves/*}`, `{name=**}`) is decoded.
/// Single-segment variables (`{id}`) are always fully decoded, as in Envoy and http.proto.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum UrlUnescapeSpec {
    /// Leave RFC 6570 reserved characters (`!#$&'()*+,/:;=?@[]`) encoded (Envoy's default).
    #[default]
    AllCharactersExceptReserved,
    /// Decode everything but `%2F` (what http.proto prescribes for multi-segment variables).
    AllCharactersExceptSlash,
    /// Decode everything, `%2F` included.
    AllCharacters,
}

impl UrlUnescapeSpec {
    /// Envoy's enum names (`ALL_CHARACTERS_EXCEPT_RESERVED`, ...), so the gateway's
    /// configuration reads like Envoy's.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ALL_CHARACTERS_EXCEPT_RESERVED" => Some(Self::AllCharactersExceptReserved),
            "ALL_CHARACTERS_EXCEPT_SLASH" => Some(Self::AllCharactersExceptSlash),
            "ALL_CHARACTERS" => Some(Self::AllCharacters),
            _ => None,
        }
    }

    /// Whether a decoded byte may replace its `%XX` escape under this spec.
    fn decodes(self, byte: u8) -> bool {
        match self {
            Self::AllCharactersExceptReserved => !is_reserved(byte),
            Self::AllCharactersExceptSlash => byte != b'/',
            Self::AllCharacters => true,
        }
    }
}

/// Why a value could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// `%` not followed by two hex digits; holds the offending text (up to 3 bytes).
    BadEscape(String),
    /// The decoded bytes are not UTF-8.
    NotUtf8,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::BadEscape(text) => write!(f, "invalid percent-encoding {text:?}"),
            DecodeError::NotUtf8 => write!(f, "percent-decoded value is not valid UTF-8"),
        }
    }
}

/// RFC 6570 reserved characters (gen-delims and sub-delims).
fn is_reserved(byte: u8) -> bool {
    matches!(
        byte,
        b'!' | b'#'
            | b'$'
            | b'&'
            | b'\''
            | b'('
            | b')'
            | b'*'
            | b'+'
            | b','
            | b'/'
            | b':'
            | b';'
            | b'='
            | b'?'
            | b'@'
            | b'['
            | b']'
    )
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// Decode `%XX` escapes in `text`; an escape whose byte `spec` keeps encoded is copied as is
/// (original case). With `plus_as_space`, `+` becomes a space (HTML form encoding, for query
/// strings only). Every escape is checked, kept or not.
pub fn percent_decode(
    text: &str,
    spec: UrlUnescapeSpec,
    plus_as_space: bool,
) -> Result<String, DecodeError> {
    let needs_work = text.contains('%') || (plus_as_space && text.contains('+'));
    if !needs_work {
        return Ok(text.to_string());
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut rest = bytes;
    while let Some((&first, tail)) = rest.split_first() {
        match first {
            b'%' => {
                let decoded = escaped_byte(tail).ok_or_else(|| bad_escape(rest))?;
                match decoded {
                    byte if spec.decodes(byte) => out.push(byte),
                    _ => out.extend(rest.iter().take(3)),
                }
                rest = tail.get(2..).unwrap_or_default();
            }
            b'+' if plus_as_space => {
                out.push(b' ');
                rest = tail;
            }
            other => {
                out.push(other);
                rest = tail;
            }
        }
    }
    String::from_utf8(out).map_err(|_| DecodeError::NotUtf8)
}

/// The byte encoded by the two hex digits at the start of `after_percent`.
fn escaped_byte(after_percent: &[u8]) -> Option<u8> {
    match after_percent {
        [high, low, ..] => Some(hex_value(*high)? << 4 | hex_value(*low)?),
        _ => None,
    }
}

fn bad_escape(at_percent: &[u8]) -> DecodeError {
    let shown: Vec<u8> = at_percent.iter().take(3).copied().collect();
    DecodeError::BadEscape(String::from_utf8_lossy(&shown).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    use UrlUnescapeSpec::*;

    #[test]
    fn envoy_names_parse_and_others_do_not() {
        assert_eq!(
            UrlUnescapeSpec::parse("ALL_CHARACTERS_EXCEPT_RESERVED"),
            Some(AllCharactersExceptReserved)
        );
        assert_eq!(
            UrlUnescapeSpec::parse("ALL_CHARACTERS_EXCEPT_SLASH"),
            Some(AllCharactersExceptSlash)
        );
        assert_eq!(
            UrlUnescapeSpec::parse("ALL_CHARACTERS"),
            Some(AllCharacters)
        );
        assert_eq!(UrlUnescapeSpec::parse("all_characters"), None);
        assert_eq!(UrlUnescapeSpec::parse(""), None);
        assert_eq!(UrlUnescapeSpec::default(), AllCharactersExceptReserved);
    }

    /// The example in Envoy's documentation of `url_unescape_spec`.
    #[test]
    fn envoy_documented_example_decodes_per_spec() {
        let input = "%2f%23/%20%2523";
        let decode = |spec| percent_decode(input, spec, false);
        assert_eq!(
            decode(AllCharactersExceptReserved).as_deref(),
            Ok("%2f%23/ %23")
        );
        assert_eq!(decode(AllCharactersExceptSlash).as_deref(), Ok("%2f#/ %23"));
        assert_eq!(decode(AllCharacters).as_deref(), Ok("/#/ %23"));
    }

    #[test]
    fn every_reserved_character_stays_encoded_by_default() {
        for c in "!#$&'()*+,/:;=?@[]".chars() {
            let escaped = format!("%{:02X}", c as u32);
            let kept = percent_decode(&escaped, AllCharactersExceptReserved, false);
            assert_eq!(kept, Ok(escaped.clone()), "{c}");
            let decoded = percent_decode(&escaped, AllCharacters, false);
            assert_eq!(decoded, Ok(c.to_string()), "{c}");
        }
    }

    #[test]
    fn multibyte_utf8_is_decoded() {
        let decoded = percent_decode("caf%C3%A9%20cr%c3%a8me", AllCharacters, false);
        assert_eq!(decoded.as_deref(), Ok("café crème"));
    }

    #[test]
    fn plus_is_a_space_only_when_asked() {
        assert_eq!(
            percent_decode("a+b", AllCharacters, true).as_deref(),
            Ok("a b")
        );
        assert_eq!(
            percent_decode("a+b", AllCharacters, false).as_deref(),
            Ok("a+b")
        );
        assert_eq!(
            percent_decode("a%2Bb", AllCharacters, true).as_deref(),
            Ok("a+b")
        );
    }

    #[test]
    fn malformed_escapes_are_errors() {
        for bad in ["%", "%2", "abc%zz", "%g1", "x%"] {
            let result = percent_decode(bad, AllCharacters, false);
            assert!(matches!(result, Err(DecodeError::BadEscape(_))), "{bad}");
        }
        let result = percent_decode("a%zzb", AllCharactersExceptReserved, false);
        assert_eq!(result, Err(DecodeError::BadEscape("%zz".to_string())));
    }

    #[test]
    fn kept_escapes_are_still_validated() {
        // %2F is kept under EXCEPT_SLASH, but the %G0 after it must still be refused.
        let result = percent_decode("%2F%G0", AllCharactersExceptSlash, false);
        assert!(matches!(result, Err(DecodeError::BadEscape(_))));
    }

    #[test]
    fn invalid_utf8_after_decoding_is_an_error() {
        let result = percent_decode("%FF%FE", AllCharacters, false);
        assert_eq!(result, Err(DecodeError::NotUtf8));
        let truncated = percent_decode("%C3", AllCharacters, false);
        assert_eq!(truncated, Err(DecodeError::NotUtf8));
    }

    #[test]
    fn text_without_escapes_is_unchanged() {
        let plain = "shelves-1_a.b~c";
        assert_eq!(
            percent_decode(plain, AllCharacters, true).as_deref(),
            Ok(plain)
        );
    }
}
