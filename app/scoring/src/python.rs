//! Python's printing of values, reproduced exactly: `str()` of what `json.loads` gives (the text
//! fmeval scores and shows for a non-string field or reference) and `repr(float)` (the shortest
//! round-trip digits with Python's choice of notation and tie-breaking).
//!
//! Invariant: output is byte-identical to CPython 3's for every JSON value; no IO, no allocation
//! beyond the returned text.

use std::borrow::Cow;

use serde_json::Value;

/// A value as Python's `str()` prints the value `json.loads` gives for it: strings as they are,
/// `True`/`False`/`None`, integers in decimal, floats in Python's shortest repr (`1.0`, `1e+16`,
/// `1.5e-05`), lists and objects in Python's repr (`['a', 1]`, `{'k': 'v'}`).
pub fn python_str(value: &Value) -> Cow<'_, str> {
    match value {
        Value::String(text) => Cow::Borrowed(text),
        other => {
            let mut out = String::new();
            write_python(other, &mut out, false);
            Cow::Owned(out)
        }
    }
}

fn write_python(value: &Value, out: &mut String, quote_strings: bool) {
    match value {
        Value::Null => out.push_str("None"),
        Value::Bool(true) => out.push_str("True"),
        Value::Bool(false) => out.push_str("False"),
        Value::Number(number) => {
            if let Some(integer) = number.as_i64() {
                out.push_str(&integer.to_string());
            } else if let Some(integer) = number.as_u64() {
                out.push_str(&integer.to_string());
            } else if let Some(float) = number.as_f64() {
                out.push_str(&python_float_repr(float));
            }
        }
        Value::String(text) => {
            if quote_strings {
                write_python_string_repr(text, out);
            } else {
                out.push_str(text);
            }
        }
        Value::Array(items) => {
            out.push('[');
            for (item_idx, item) in items.iter().enumerate() {
                if item_idx > 0 {
                    out.push_str(", ");
                }
                write_python(item, out, true);
            }
            out.push(']');
        }
        Value::Object(fields) => {
            out.push('{');
            for (field_idx, (key, item)) in fields.iter().enumerate() {
                if field_idx > 0 {
                    out.push_str(", ");
                }
                write_python_string_repr(key, out);
                out.push_str(": ");
                write_python(item, out, true);
            }
            out.push('}');
        }
    }
}

/// Python's `repr()` of a string, for the printable cases: single quotes unless the text has a
/// single quote and no double quote; backslash, the quote and control characters escaped.
fn write_python_string_repr(text: &str, out: &mut String) {
    let quote = if text.contains('\'') && !text.contains('"') {
        '"'
    } else {
        '\''
    };
    out.push(quote);
    for character in text.chars() {
        match character {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            character if character == quote => {
                out.push('\\');
                out.push(character);
            }
            character if (character as u32) < 0x20 || character as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", character as u32));
            }
            character => out.push(character),
        }
    }
    out.push(quote);
}

/// Python's `repr(float)`: the shortest round-trip digits, in positional notation when the
/// decimal exponent is in [-5, 16), otherwise in scientific notation with a signed exponent of
/// at least two digits.
pub fn python_float_repr(value: f64) -> String {
    if value.is_nan() {
        return "nan".to_owned();
    }
    if value.is_infinite() {
        return if value > 0.0 { "inf" } else { "-inf" }.to_owned();
    }
    if value == 0.0 {
        return if value.is_sign_negative() {
            "-0.0"
        } else {
            "0.0"
        }
        .to_owned();
    }
    let (digits, exponent) = shortest_digits(value.abs());
    let sign = if value < 0.0 { "-" } else { "" };
    if (-4..16).contains(&exponent) {
        let n_digits = digits.len() as i32;
        let point = exponent + 1;
        let body = if point <= 0 {
            format!("0.{}{}", "0".repeat((-point) as usize), digits)
        } else if point >= n_digits {
            format!("{}{}.0", digits, "0".repeat((point - n_digits) as usize))
        } else {
            format!(
                "{}.{}",
                &digits[..point as usize],
                &digits[point as usize..]
            )
        };
        format!("{sign}{body}")
    } else {
        let body = if digits.len() > 1 {
            format!("{}.{}", &digits[..1], &digits[1..])
        } else {
            digits
        };
        let exponent_sign = if exponent < 0 { '-' } else { '+' };
        format!("{sign}{body}e{exponent_sign}{:02}", exponent.abs())
    }
}

/// The shortest decimal digits that round-trip to `value` (positive, finite) and the decimal
/// exponent of the first digit. Like Python (David Gay's dtoa), a tie between two equally close
/// shortest candidates goes to the even last digit; Rust's formatter may pick the other one.
fn shortest_digits(value: f64) -> (String, i32) {
    let (digits, exponent) = split_scientific(&format!("{value:e}"));
    let Some(last) = digits.bytes().last().map(|byte| byte - b'0') else {
        return (digits, exponent);
    };
    if last % 2 == 0 {
        return (digits, exponent);
    }
    // The exact decimal expansion of a double has at most 767 significant digits.
    let (exact, exact_exponent) = split_scientific(&format!("{value:.800e}"));
    if exact_exponent != exponent {
        return (digits, exponent);
    }
    let prefix = &digits[..digits.len() - 1];
    let is_midpoint = |low_last: u8| {
        let midpoint = format!("{prefix}{}5", char::from(b'0' + low_last));
        exact.starts_with(&midpoint) && exact[midpoint.len()..].bytes().all(|byte| byte == b'0')
    };
    let round_trips = |candidate: &str| {
        let scientific = format!("{}.{}e{exponent}", &candidate[..1], &candidate[1..]);
        scientific.parse::<f64>() == Ok(value)
    };
    let lower = format!("{prefix}{}", char::from(b'0' + last - 1));
    let upper = format!("{prefix}{}", char::from(b'0' + last + 1));
    if is_midpoint(last - 1) && !lower.starts_with('0') && round_trips(&lower) {
        (lower, exponent)
    } else if last < 9 && is_midpoint(last) && round_trips(&upper) {
        (upper, exponent)
    } else {
        (digits, exponent)
    }
}

/// Splits Rust's `d.ddde[-]x` into the digits and the exponent.
fn split_scientific(scientific: &str) -> (String, i32) {
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((scientific, "0"));
    let digits = mantissa.chars().filter(char::is_ascii_digit).collect();
    (digits, exponent.parse().unwrap_or(0))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn check_str(json: &str, expected: &str) {
        let value: Value = serde_json::from_str(json).expect("test JSON is valid");
        assert_eq!(python_str(&value), expected, "json: {json}");
    }

    #[test]
    fn python_str_matches_python() {
        check_str("\"a b\"", "a b");
        check_str("8", "8");
        check_str("-3", "-3");
        check_str("18446744073709551615", "18446744073709551615");
        check_str("1.5", "1.5");
        check_str("1.0", "1.0");
        check_str("-0.0", "-0.0");
        check_str("0.1", "0.1");
        check_str("0.0001", "0.0001");
        check_str("0.00001", "1e-05");
        check_str("1.5e-7", "1.5e-07");
        check_str("1e15", "1000000000000000.0");
        check_str("1e16", "1e+16");
        check_str("1.2345e20", "1.2345e+20");
        check_str("123456.789", "123456.789");
        check_str("1e300", "1e+300");
        // Exactly between two shortest candidates: Python takes the even digit.
        check_str("1273812973436447.25", "1273812973436447.2");
        check_str("5e-324", "5e-324");
        check_str("1.7976931348623157e308", "1.7976931348623157e+308");
        check_str("true", "True");
        check_str("false", "False");
        check_str("null", "None");
        check_str("[\"a\", 1, true, null, 2.5]", "['a', 1, True, None, 2.5]");
        check_str("[\"it's\", \"a\\\\b\"]", "[\"it's\", 'a\\\\b']");
        check_str("{\"k\": \"v\", \"n\": [1]}", "{'k': 'v', 'n': [1]}");
    }
}
