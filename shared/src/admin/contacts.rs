//! `prechat-admin contact show`: what a contact answered, for admins.
//!
//! Prints the contact's saved fields and consent record and the current (or last)
//! conversation with its answers, as JSON. This is an admin's own terminal with their AWS
//! credentials: personal data is shown on purpose here, and never logged.

use serde_json::json;

use super::{context, AdminError};
use crate::store::conversation_store::{ContactRecord, ConversationStore, DynamoConversationStore};
use crate::store::DynamoTable;
use crate::whatsapp::ContactKey;

pub const USAGE: &str = "usage: prechat-admin [--table NAME] contact show PHONE_NUMBER_ID CONTACT
  CONTACT is the contact's business-scoped user id (e.g. US.1349...) or, for contacts without
  one, the phone number as Meta sends it (digits, no +).";

pub async fn run(mut args: Vec<String>) -> Result<String, AdminError> {
    let ctx = context(&mut args)?;
    let [cmd, phone_number_id, contact] = args.as_slice() else {
        return Err(AdminError::Usage(USAGE.to_owned()));
    };
    if cmd != "show" {
        return Err(AdminError::Usage(USAGE.to_owned()));
    }
    let sdk = crate::aws::load_config().await;
    let store = DynamoConversationStore::new(DynamoTable::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        ctx.table,
    ));
    show(&store, phone_number_id, contact).await
}

/// Loads and renders one contact.
pub async fn show(
    store: &impl ConversationStore,
    phone_number_id: &str,
    contact: &str,
) -> Result<String, AdminError> {
    let record = store
        .load(phone_number_id, &ContactKey::from(contact), true)
        .await
        .map_err(|e| AdminError::Failed(e.to_string()))?
        .ok_or_else(|| AdminError::Failed(format!("no contact {contact} on {phone_number_id}")))?;
    render(&record)
}

/// The JSON an admin sees: the contact, and the conversation with its answers.
pub fn render(record: &ContactRecord) -> Result<String, AdminError> {
    let doc = json!({
        "contact": record.contact,
        "conversation": record.conversation,
        "conversation_closed_at": record.conversation_closed_at,
    });
    serde_json::to_string_pretty(&doc).map_err(|e| AdminError::Failed(e.to_string()))
}
