//! Secrets Manager rules: rotation.

mod secrets_manager_rotation_enabled;

pub use secrets_manager_rotation_enabled::SECRETS_MANAGER_ROTATION_ENABLED;
