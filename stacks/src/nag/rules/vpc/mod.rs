//! VPC rules: flow logs and network ACLs.

mod vpc_flow_logs_enabled;
mod vpc_no_nacls;

pub use vpc_flow_logs_enabled::VPC_FLOW_LOGS_ENABLED;
pub use vpc_no_nacls::VPC_NO_NACLS;
