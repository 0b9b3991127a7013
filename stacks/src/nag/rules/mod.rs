//! The rules, one file per rule under `rules/<service>/`, each defining one `const` [`Rule`].
//!
//! Each rule follows the logic of the cdk-nag rule of the same name (see `RULES.md`); the
//! explanations are our own. Helpers here only walk property trees and apply a rule's own
//! predicate; what counts as a violation always stays in the rule's file.

pub mod cloudfront;
pub mod codebuild;
pub mod cognito;
pub mod dynamodb;
pub mod ec2;
pub mod ecs;
pub mod elb;
pub mod iam;
pub mod lambda;
pub mod s3;
pub mod sagemaker;
pub mod secretsmanager;
pub mod vpc;

use serde_json::{Map, Value};

use super::resolve::is_intrinsic;
use super::{CheckResult, Compliance, Resource, Scalar, Unresolved};

/// A mapping found inside a property, with its property path.
pub(crate) type Located<'a> = (String, &'a Map<String, Value>);

/// `Compliant` unless `bad`.
pub(crate) fn verdict(bad: bool) -> CheckResult {
    Ok(if bad {
        Compliance::NonCompliant
    } else {
        Compliance::Compliant
    })
}

/// `NonCompliant` when any literal variant of the top-level property `name` is `bad` (an
/// absent variant is `None`); a variant that is not a literal is [`Unresolved`] at `name`.
pub(crate) fn any_prop<'a>(
    res: &Resource<'a>,
    name: &str,
    bad: impl FnMut(Option<Scalar<'a>>) -> bool,
) -> CheckResult {
    verdict(res.prop_scalars(name)?.into_iter().any(bad))
}

/// The literal variants of `parent.key`, reported at `{path}.{key}`; an absent parent is one
/// absent variant.
pub(crate) fn field<'a>(
    res: &Resource<'a>,
    parent: Option<&'a Map<String, Value>>,
    key: &str,
    path: &str,
) -> Result<Vec<Option<Scalar<'a>>>, Unresolved> {
    match parent {
        Some(parent) => res.scalars(parent.get(key), &format!("{path}.{key}")),
        None => Ok(vec![None]),
    }
}

/// Every object variant of every item of every list variant of `value`, with its path.
/// Absent lists and absent items are skipped.
pub(crate) fn items<'a>(
    res: &Resource<'a>,
    value: Option<&'a Value>,
    path: &str,
) -> Result<Vec<Located<'a>>, Unresolved> {
    let mut out = Vec::new();
    for list in res.lists(value, path)?.into_iter().flatten() {
        for (item_idx, item) in list.iter().enumerate() {
            let item_path = format!("{path}[{item_idx}]");
            for object in res.objects(Some(item), &item_path)?.into_iter().flatten() {
                out.push((item_path.clone(), object));
            }
        }
    }
    Ok(out)
}

/// The statements of a policy document (a single statement object or a list), with paths.
pub(crate) fn statements<'a>(
    res: &Resource<'a>,
    document: &'a Map<String, Value>,
    path: &str,
) -> Result<Vec<Located<'a>>, Unresolved> {
    let path = format!("{path}.Statement");
    match document.get("Statement") {
        Some(Value::Object(single)) if !is_intrinsic(single) => Ok(vec![(path, single)]),
        other => items(res, other, &path),
    }
}

/// Every object variant of a nested property (absent variants are `None`).
pub(crate) fn nested<'a>(
    res: &Resource<'a>,
    parent: Option<&'a Map<String, Value>>,
    key: &str,
    path: &str,
) -> Result<Vec<Option<&'a Map<String, Value>>>, Unresolved> {
    match parent {
        Some(parent) => res.objects(parent.get(key), &format!("{path}.{key}")),
        None => Ok(vec![None]),
    }
}

/// True when `text` contains `id` not directly followed by a word character (or `-` when
/// `dash_ends_word` is false), as cdk-nag's `${id}(?![\w])` patterns do.
pub(crate) fn mentions(text: &str, id: &str, dash_is_word: bool) -> bool {
    if id.is_empty() {
        return false;
    }
    text.match_indices(id).any(|(start, _)| {
        text[start + id.len()..].chars().next().is_none_or(|next| {
            !(next.is_alphanumeric() || next == '_' || (dash_is_word && next == '-'))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_reads_parent_key_at_its_path() {
        let parsed = crate::nag::parse_template(
            "t.yaml",
            "Parameters: {P: {Type: String}}\nResources: {R: {Type: X, Properties: {Policy: {Enabled: !Ref P, Mode: fast}}}}",
        )
        .expect("valid");
        let (id, body) = parsed.resources().next().expect("one resource");
        let res = Resource::new(&parsed, id, body);
        let policy = res.prop("Policy").and_then(Value::as_object);
        assert_eq!(field(&res, None, "Mode", "Policy"), Ok(vec![None]));
        assert_eq!(
            field(&res, policy, "Mode", "Policy"),
            Ok(vec![Some(Scalar::Str("fast"))])
        );
        assert_eq!(
            field(&res, policy, "Enabled", "Policy").map_err(|unresolved| unresolved.path),
            Err("Policy.Enabled".to_owned())
        );
    }

    #[test]
    fn mentions_respects_word_boundaries() {
        assert!(mentions("<Bucket.Arn>", "Bucket", false));
        assert!(!mentions("<BucketTwo.Arn>", "Bucket", false));
        assert!(mentions("{\"Ref\":\"Bucket\"}", "Bucket", true));
        assert!(!mentions("my-bucket-logs", "my-bucket", true));
        assert!(mentions("my-bucket-logs", "my-bucket", false));
        assert!(!mentions("x", "", false));
    }
}
