//! `AWS::Budgets::*`: a monthly cost budget with email alerts.

use serde::Serialize;

use crate::model::Value;
use crate::resources::resource;

/// An amount and its unit (`USD`).
#[derive(Debug, Clone, Serialize)]
pub struct Spend {
    /// The amount (a JSON number).
    #[serde(rename = "Amount")]
    pub amount: f64,
    /// `USD`.
    #[serde(rename = "Unit")]
    pub unit: Value<String>,
}

/// What the budget tracks.
#[derive(Debug, Clone, Serialize)]
pub struct BudgetData {
    /// Name of the budget (unique in the account).
    #[serde(rename = "BudgetName", skip_serializing_if = "Option::is_none")]
    pub budget_name: Option<Value<String>>,
    /// The limit.
    #[serde(rename = "BudgetLimit", skip_serializing_if = "Option::is_none")]
    pub budget_limit: Option<Spend>,
    /// `MONTHLY`, ...
    #[serde(rename = "TimeUnit")]
    pub time_unit: Value<String>,
    /// `COST`, `USAGE`, ...
    #[serde(rename = "BudgetType")]
    pub budget_type: Value<String>,
}

/// When to notify.
#[derive(Debug, Clone, Serialize)]
pub struct Notification {
    /// `ACTUAL` or `FORECASTED`.
    #[serde(rename = "NotificationType")]
    pub notification_type: Value<String>,
    /// `GREATER_THAN`, ...
    #[serde(rename = "ComparisonOperator")]
    pub comparison_operator: Value<String>,
    /// The threshold (a JSON number).
    #[serde(rename = "Threshold")]
    pub threshold: f64,
    /// `PERCENTAGE` or `ABSOLUTE_VALUE`.
    #[serde(rename = "ThresholdType", skip_serializing_if = "Option::is_none")]
    pub threshold_type: Option<Value<String>>,
}

/// Who is notified.
#[derive(Debug, Clone, Serialize)]
pub struct Subscriber {
    /// `EMAIL` or `SNS`.
    #[serde(rename = "SubscriptionType")]
    pub subscription_type: Value<String>,
    /// The address.
    #[serde(rename = "Address")]
    pub address: Value<String>,
}

/// A notification and its subscribers.
#[derive(Debug, Clone, Serialize)]
pub struct NotificationWithSubscribers {
    /// When.
    #[serde(rename = "Notification")]
    pub notification: Notification,
    /// Who (1 to 11).
    #[serde(rename = "Subscribers")]
    pub subscribers: Vec<Subscriber>,
}

/// `AWS::Budgets::Budget`.
#[derive(Debug, Clone, Serialize)]
pub struct Budget {
    /// What the budget tracks.
    #[serde(rename = "Budget")]
    pub budget: BudgetData,
    /// Alerts.
    #[serde(
        rename = "NotificationsWithSubscribers",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub notifications_with_subscribers: Vec<NotificationWithSubscribers>,
}
resource!(Budget, "AWS::Budgets::Budget");
