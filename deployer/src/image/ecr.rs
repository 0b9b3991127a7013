//! Amazon ECR: recognising an ECR registry host and signing in to it with
//! `ecr:GetAuthorizationToken`, whose token is HTTP Basic `AWS:<password>` (valid 12 hours,
//! for every registry of the region the caller may use).

use aws_sdk_ecr::config::Region;
use aws_sdk_ecr::error::DisplayErrorContext;
use base64::Engine as _;
use secrecy::SecretString;

use super::{ImageError, RegistryAuth};

/// An ECR registry named by its host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcrHost {
    /// The 12-digit account id.
    pub account: String,
    /// The region.
    pub region: String,
}

/// `<account>.dkr.ecr[-fips].<region>.amazonaws.com[.cn]` or the dual-stack
/// `<account>.dkr-ecr[-fips].<region>.on.aws`; `None` for any other host.
pub fn parse_host(host: &str) -> Option<EcrHost> {
    let host = host.split(':').next().unwrap_or(host).to_ascii_lowercase();
    let (rest, dual_stack) = if let Some(rest) = host.strip_suffix(".on.aws") {
        (rest, true)
    } else {
        let rest = host
            .strip_suffix(".amazonaws.com")
            .or_else(|| host.strip_suffix(".amazonaws.com.cn"))?;
        (rest, false)
    };
    let labels: Vec<&str> = rest.split('.').collect();
    let (account, region) = match (labels.as_slice(), dual_stack) {
        ([account, "dkr", "ecr" | "ecr-fips", region], false) => (*account, *region),
        ([account, "dkr-ecr" | "dkr-ecr-fips", region], true) => (*account, *region),
        _ => return None,
    };
    let account_ok = account.len() == 12 && account.bytes().all(|byte| byte.is_ascii_digit());
    let region_ok = !region.is_empty()
        && region
            .bytes()
            .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-');
    (account_ok && region_ok).then(|| EcrHost {
        account: account.to_owned(),
        region: region.to_owned(),
    })
}

/// Whether `host` is an ECR registry (push with [`ecr_auth`]).
pub fn is_ecr_host(host: &str) -> bool {
    parse_host(host).is_some()
}

/// Credentials for the ECR registry `registry_host` from `ecr:GetAuthorizationToken`, called in
/// the registry's region with `config`'s credentials (and its endpoint override, if any).
pub async fn ecr_auth(
    config: &aws_config::SdkConfig,
    registry_host: &str,
) -> Result<RegistryAuth, ImageError> {
    let failed = |detail: String| ImageError::Ecr {
        registry: registry_host.to_owned(),
        detail,
    };
    let host = parse_host(registry_host).ok_or_else(|| {
        failed("not an ECR registry host (<account>.dkr.ecr.<region>.amazonaws.com)".to_owned())
    })?;
    let ecr_config = aws_sdk_ecr::config::Builder::from(config)
        .region(Region::new(host.region.clone()))
        .build();
    let client = aws_sdk_ecr::Client::from_conf(ecr_config);
    let output = client.get_authorization_token().send().await.map_err(|err| {
        failed(format!(
            "GetAuthorizationToken in {}: {} (AWS credentials come from the environment, a profile, SSO or an instance or container role)",
            host.region,
            DisplayErrorContext(&err)
        ))
    })?;
    let token = output
        .authorization_data()
        .first()
        .and_then(|data| data.authorization_token())
        .ok_or_else(|| failed("GetAuthorizationToken answered no token".to_owned()))?;
    basic_from_token(token).map_err(failed)
}

/// `base64("AWS:<password>")` → Basic `AWS` / `<password>`.
fn basic_from_token(token: &str) -> Result<RegistryAuth, String> {
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(token.trim())
        .map_err(|_| "the authorization token is not base64".to_owned())?;
    let decoded = String::from_utf8(decoded)
        .map_err(|_| "the authorization token is not user:password".to_owned())?;
    match decoded.split_once(':') {
        Some((username, password)) if !username.is_empty() && !password.is_empty() => {
            Ok(RegistryAuth::Basic {
                username: username.to_owned(),
                password: SecretString::from(password.to_owned()),
            })
        }
        _ => Err("the authorization token is not user:password".to_owned()),
    }
}

/// The URI (`<account>.dkr.ecr.<region>.amazonaws.com/<name>`) of the ECR repository `name`
/// (DescribeRepositories); an error when it does not exist (ECR does not create repositories on
/// push).
pub async fn repository_uri(
    config: &aws_config::SdkConfig,
    name: &str,
) -> Result<String, ImageError> {
    let failed = |detail: String| ImageError::Ecr {
        registry: name.to_owned(),
        detail,
    };
    let output = aws_sdk_ecr::Client::new(config)
        .describe_repositories()
        .repository_names(name)
        .send()
        .await
        .map_err(|err| {
            failed(format!(
                "DescribeRepositories: {}",
                DisplayErrorContext(&err)
            ))
        })?;
    output
        .repositories()
        .first()
        .and_then(|repository| repository.repository_uri())
        .map(str::to_owned)
        .ok_or_else(|| failed("the repository does not exist".to_owned()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests fail loudly on unexpected errors; that is the point.
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    fn check(host: &str, expected: Option<(&str, &str)>) {
        assert_eq!(
            parse_host(host),
            expected.map(|(account, region)| EcrHost {
                account: account.into(),
                region: region.into()
            }),
            "{host}"
        );
    }

    #[test]
    fn ecr_hosts() {
        check(
            "123456789012.dkr.ecr.us-east-1.amazonaws.com",
            Some(("123456789012", "us-east-1")),
        );
        check(
            "123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com",
            Some(("123456789012", "us-gov-west-1")),
        );
        check(
            "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn",
            Some(("123456789012", "cn-north-1")),
        );
        check(
            "123456789012.dkr-ecr.eu-west-1.on.aws",
            Some(("123456789012", "eu-west-1")),
        );
        check(
            "123456789012.dkr.ecr.us-east-1.amazonaws.com:443",
            Some(("123456789012", "us-east-1")),
        );
        check("12345.dkr.ecr.us-east-1.amazonaws.com", None);
        check("123456789012.dkr.s3.us-east-1.amazonaws.com", None);
        check("public.ecr.aws", None);
        check("ghcr.io", None);
        check("127.0.0.1:5000", None);
        check("a.123456789012.dkr.ecr.us-east-1.amazonaws.com", None);
    }

    #[test]
    fn tokens() {
        let token = base64::engine::general_purpose::STANDARD.encode("AWS:secret:with:colons");
        let RegistryAuth::Basic { username, password } = basic_from_token(&token).unwrap() else {
            panic!("basic")
        };
        assert_eq!(
            (username.as_str(), password.expose_secret()),
            ("AWS", "secret:with:colons")
        );
        assert!(basic_from_token("%%%").is_err());
        let no_colon = base64::engine::general_purpose::STANDARD.encode("AWS");
        assert!(basic_from_token(&no_colon).is_err());
    }

    fn sdk_config(endpoint_url: &str, with_credentials: bool) -> aws_config::SdkConfig {
        use aws_sdk_ecr::config::{Credentials, SharedCredentialsProvider};
        let builder = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            // Another region than the registry's: the call must go to the registry's.
            .region(Region::new("eu-west-1"))
            .endpoint_url(endpoint_url);
        let builder = if with_credentials {
            builder.credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                "AKIDMOTO",
                "moto-secret",
                None,
                None,
                "test",
            )))
        } else {
            builder
        };
        builder.build()
    }

    /// GetAuthorizationToken against moto (which answers `AWS:<account>-auth-token`).
    #[tokio::test]
    async fn auth_from_get_authorization_token() {
        let moto = model_doubles::Moto::start().await;
        let auth = ecr_auth(
            &sdk_config(moto.url(), true),
            "123456789012.dkr.ecr.us-east-1.amazonaws.com",
        )
        .await
        .unwrap();
        let RegistryAuth::Basic { username, password } = auth else {
            panic!("basic")
        };
        assert_eq!(
            (username.as_str(), password.expose_secret()),
            ("AWS", "123456789012-auth-token")
        );
        let err = ecr_auth(
            &sdk_config(moto.url(), false),
            "123456789012.dkr.ecr.us-east-1.amazonaws.com",
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("GetAuthorizationToken in us-east-1") && err.contains("credentials"),
            "{err}"
        );
        let err = ecr_auth(&sdk_config(moto.url(), true), "ghcr.io")
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("not an ECR registry host"), "{err}");
    }
}
