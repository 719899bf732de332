//! Per-minute rate limits of the visitor endpoints in the state table: one counter item per
//! scope and minute ([`crate::store::keys::rate_limit`]), counted up by one conditional
//! `UpdateItem ADD` that fails once the limit is reached, so a refused request costs no
//! write. The TTL removes old minutes.

use std::future::Future;

use super::http::RateCheck;
use crate::store::item::n;
use crate::store::{attr, keys, DynamoTable, StoreError};

/// Counter items outlive their minute by this much (DynamoDB's TTL is lazy anyway).
const KEEP_SECS: i64 = 300;

/// Counts requests against per-minute limits.
pub trait RateLimiter: Send + Sync {
    /// Counts one request in `check.scope`'s `minute`: `Ok(true)` when it is within the limit,
    /// `Ok(false)` (nothing counted) when the limit is reached.
    fn hit(
        &self,
        check: &RateCheck,
        minute: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// [`RateLimiter`] on the state table.
#[derive(Clone, Debug)]
pub struct DynamoRateLimiter {
    table: DynamoTable,
}

impl DynamoRateLimiter {
    pub fn new(table: DynamoTable) -> Self {
        DynamoRateLimiter { table }
    }
}

impl RateLimiter for DynamoRateLimiter {
    async fn hit(&self, check: &RateCheck, minute: i64) -> Result<bool, StoreError> {
        let result = self
            .table
            .client
            .update_item()
            .table_name(&self.table.name)
            .set_key(Some(keys::rate_limit(&check.scope, minute).item()))
            .update_expression("ADD hits :one SET #exp = if_not_exists(#exp, :exp)")
            .condition_expression("attribute_not_exists(hits) OR hits < :limit")
            .expression_attribute_names("#exp", attr::EXPIRES_AT)
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":limit", n(check.limit))
            .expression_attribute_values(":exp", n((minute + 1) * 60 + KEEP_SECS))
            .send()
            .await
            .map_err(StoreError::from_sdk);
        match result {
            Ok(_) => Ok(true),
            Err(StoreError::ConditionFailed(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }
}
