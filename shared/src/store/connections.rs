//! The agents' WebSocket connections ([`keys::ws_connection`]): who is connected where, so a
//! push reaches every open tab of an agent.
//!
//! An item lives from `$connect` to `$disconnect`; API Gateway closes a connection after 2 h
//! at most (and after 10 min idle), so every item also expires [`TTL_SECS`] (2 h 10 min)
//! after it was made: a `$disconnect` that never ran (it is best effort) leaves nothing
//! behind for long, and readers skip items past their `expires_at` before DynamoDB's TTL
//! deletes them. Listed per agent on `gsi1` (partition [`keys::agent_connections`]), oldest
//! first; eventually consistent, which a push (a hint) can afford.

use std::future::Future;

use aws_sdk_dynamodb::types::AttributeValue;

use super::item::{n, s, Item, ItemExt};
use super::{attr, keys, DynamoTable, StoreError};

/// How long a connection item is kept: API Gateway's maximum connection lifetime (2 h) and
/// 10 minutes of slack.
pub const TTL_SECS: i64 = 2 * 3600 + 10 * 60;

/// Longest connection id accepted (API Gateway's are 16 characters, base64-like).
pub const MAX_CONNECTION_ID_BYTES: usize = 128;

/// One open WebSocket connection of an agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub connection_id: String,
    pub agent_id: String,
    /// Unix milliseconds.
    pub connected_at: i64,
    /// Unix seconds (the TTL attribute).
    pub expires_at: i64,
}

impl Connection {
    /// A connection made at `connected_at_ms`, expiring [`TTL_SECS`] later.
    pub fn new(connection_id: &str, agent_id: &str, connected_at_ms: i64) -> Self {
        Connection {
            connection_id: connection_id.to_owned(),
            agent_id: agent_id.to_owned(),
            connected_at: connected_at_ms,
            expires_at: connected_at_ms.div_euclid(1000).saturating_add(TTL_SECS),
        }
    }

    /// Whether the item is past its TTL at `now` (Unix seconds).
    pub fn expired(&self, now: i64) -> bool {
        self.expires_at <= now
    }

    /// The item written on `$connect`.
    pub fn to_item(&self) -> Item {
        let mut item = keys::ws_connection(&self.connection_id).item();
        item.insert(
            attr::GSI1_PK.to_owned(),
            s(keys::agent_connections(&self.agent_id)),
        );
        item.insert(
            attr::GSI1_SK.to_owned(),
            s(keys::connection_sort(
                self.connected_at,
                &self.connection_id,
            )),
        );
        item.insert("connection_id".to_owned(), s(&self.connection_id));
        item.insert("agent_id".to_owned(), s(&self.agent_id));
        item.insert("connected_at".to_owned(), n(self.connected_at));
        item.insert(attr::EXPIRES_AT.to_owned(), n(self.expires_at));
        item
    }

    /// Reads an item [`Connection::to_item`] wrote.
    pub fn from_item(item: &Item) -> Result<Connection, StoreError> {
        Ok(Connection {
            connection_id: item.str_req("connection_id")?.to_owned(),
            agent_id: item.str_req("agent_id")?.to_owned(),
            connected_at: item.num_req("connected_at")?,
            expires_at: item.num_req(attr::EXPIRES_AT)?,
        })
    }
}

/// The connection store port.
pub trait ConnectionStore: Send + Sync {
    /// Records a connection (a repeated `$connect` of the same id overwrites it).
    fn put(&self, connection: &Connection) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Removes a connection; removing one that is not there is fine.
    fn remove(&self, connection_id: &str) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The agent's connections that have not expired at `now` (Unix seconds), oldest first.
    fn of_agent(
        &self,
        agent_id: &str,
        now: i64,
    ) -> impl Future<Output = Result<Vec<Connection>, StoreError>> + Send;
}

/// [`ConnectionStore`] on the state table.
#[derive(Clone, Debug)]
pub struct DynamoConnections {
    table: DynamoTable,
}

impl DynamoConnections {
    pub fn new(table: DynamoTable) -> Self {
        DynamoConnections { table }
    }
}

/// Most connections read for one agent (tabs and devices; more are ignored).
pub const MAX_CONNECTIONS_PER_AGENT: i32 = 50;

impl ConnectionStore for DynamoConnections {
    async fn put(&self, connection: &Connection) -> Result<(), StoreError> {
        self.table
            .client
            .put_item()
            .table_name(&self.table.name)
            .set_item(Some(connection.to_item()))
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        Ok(())
    }

    async fn remove(&self, connection_id: &str) -> Result<(), StoreError> {
        self.table
            .client
            .delete_item()
            .table_name(&self.table.name)
            .set_key(Some(keys::ws_connection(connection_id).item()))
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        Ok(())
    }

    async fn of_agent(&self, agent_id: &str, now: i64) -> Result<Vec<Connection>, StoreError> {
        let out = self
            .table
            .client
            .query()
            .table_name(&self.table.name)
            .index_name(attr::GSI1)
            .key_condition_expression("gsi1pk = :p")
            .expression_attribute_values(":p", AttributeValue::S(keys::agent_connections(agent_id)))
            .limit(MAX_CONNECTIONS_PER_AGENT)
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        let mut found = Vec::new();
        for item in out.items.unwrap_or_default() {
            let c = Connection::from_item(&item)?;
            if !c.expired(now) {
                found.push(c);
            }
        }
        Ok(found)
    }
}

/// [`ConnectionStore`] in memory, for the pure tests of its users.
#[cfg(test)]
#[derive(Default)]
pub(crate) struct MemoryConnections(pub std::sync::Mutex<Vec<Connection>>);

#[cfg(test)]
impl MemoryConnections {
    pub fn ids(&self) -> Vec<String> {
        let all = self.0.lock().unwrap_or_else(|p| p.into_inner());
        all.iter().map(|c| c.connection_id.clone()).collect()
    }
}

#[cfg(test)]
impl ConnectionStore for MemoryConnections {
    async fn put(&self, c: &Connection) -> Result<(), StoreError> {
        let mut all = self.0.lock().unwrap_or_else(|p| p.into_inner());
        all.retain(|o| o.connection_id != c.connection_id);
        all.push(c.clone());
        Ok(())
    }
    async fn remove(&self, id: &str) -> Result<(), StoreError> {
        let mut all = self.0.lock().unwrap_or_else(|p| p.into_inner());
        all.retain(|c| c.connection_id != id);
        Ok(())
    }
    async fn of_agent(&self, agent: &str, now: i64) -> Result<Vec<Connection>, StoreError> {
        let all = self.0.lock().unwrap_or_else(|p| p.into_inner());
        Ok(all
            .iter()
            .filter(|c| c.agent_id == agent && !c.expired(now))
            .cloned()
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_reads_back_as_written_in_its_agent_s_partition() {
        let c = Connection::new("Abc123=", "alice", 1_700_000_000_123);
        let item = c.to_item();
        assert_eq!(Connection::from_item(&item).unwrap(), c);
        assert_eq!(item.str_opt(attr::GSI1_PK), Some("WSAGENT#alice"));
        assert_eq!(item.str_opt(attr::PK), Some("WSCONN#Abc123="));
        assert_eq!(item.str_opt(attr::GSI1_SK), Some("1700000000123#Abc123="));
    }

    #[test]
    fn a_connection_expires_two_hours_ten_minutes_after_it_was_made() {
        let c = Connection::new("c", "a", 1_700_000_000_999);
        assert_eq!(c.expires_at, 1_700_000_000 + 7_800);
        assert!(!c.expired(1_700_000_000 + 7_799));
        assert!(c.expired(1_700_000_000 + 7_800));
    }

    #[test]
    fn an_item_missing_an_attribute_is_corrupt() {
        let mut item = Connection::new("c", "a", 1).to_item();
        item.remove("agent_id");
        assert!(matches!(
            Connection::from_item(&item),
            Err(StoreError::Corrupt { .. })
        ));
    }

    #[test]
    fn connections_sort_oldest_first() {
        assert!(keys::connection_sort(999, "z") < keys::connection_sort(1_000, "a"));
        assert_eq!(keys::connection_sort(-5, "a"), "0000000000000#a");
    }
}
