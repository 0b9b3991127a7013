//! EC2 rules: security groups, EBS encryption, instance monitoring and protection.

mod ec2_ebs_volume_encrypted;
mod ec2_instance_detailed_monitoring;
mod ec2_instance_termination_protection;
mod ec2_restricted_inbound;
mod ec2_security_group_description;

pub use ec2_ebs_volume_encrypted::EC2_EBS_VOLUME_ENCRYPTED;
pub use ec2_instance_detailed_monitoring::EC2_INSTANCE_DETAILED_MONITORING;
pub use ec2_instance_termination_protection::EC2_INSTANCE_TERMINATION_PROTECTION;
pub use ec2_restricted_inbound::EC2_RESTRICTED_INBOUND;
pub use ec2_security_group_description::EC2_SECURITY_GROUP_DESCRIPTION;
