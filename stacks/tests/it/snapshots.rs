//! One snapshot per synthesized stack (default configuration), of the exact JSON bytes.

use crate::helpers::default_stack;

fn check(kind: &str) {
    let stack = default_stack(kind);
    let text = String::from_utf8(stack.template.to_json_bytes()).unwrap();
    insta::assert_snapshot!(kind, text);
}

#[test]
fn network() {
    check("network")
}

#[test]
fn app() {
    check("app")
}

#[test]
fn studio() {
    check("studio")
}

#[test]
fn toolkit() {
    check("toolkit")
}
