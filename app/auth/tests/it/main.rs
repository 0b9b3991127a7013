//! The login library's integration tests, against moto's Cognito: one binary.

mod authenticator;
