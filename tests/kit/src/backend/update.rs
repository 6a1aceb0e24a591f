//! `UpdatePayment` semantics: apply the fields named by the update mask (top-level paths), or
//! every non-default field of the patch when the mask is empty.
use tonic::Status;

use super::errors::bad_request;
use crate::proto::meshgate::demo::v1::Payment;

/// Applies `patch` to `current` under `paths`; an unknown or immutable path is INVALID_ARGUMENT.
pub fn apply_update(
    current: &mut Payment,
    patch: &Payment,
    paths: &[String],
) -> Result<(), Status> {
    if paths.is_empty() {
        merge_non_default(current, patch);
        return Ok(());
    }
    for path in paths {
        apply_path(current, patch, path)?;
    }
    Ok(())
}

fn apply_path(current: &mut Payment, patch: &Payment, path: &str) -> Result<(), Status> {
    match path {
        "amount" => current.amount = patch.amount.clone(),
        "merchant" => current.merchant = patch.merchant.clone(),
        "state" => current.state = patch.state,
        "items" => current.items = patch.items.clone(),
        "labels" => current.labels = patch.labels.clone(),
        "metadata" => current.metadata = patch.metadata.clone(),
        "note" => current.note = patch.note.clone(),
        "tags" => current.tags = patch.tags.clone(),
        "test_mode" | "testMode" => current.test_mode = patch.test_mode,
        "fx_rate" | "fxRate" => current.fx_rate = patch.fx_rate,
        "id" | "create_time" | "createTime" => {
            return Err(bad_request("update_mask", &format!("{path} is immutable")))
        }
        other => {
            return Err(bad_request(
                "update_mask",
                &format!("unknown field {other}"),
            ))
        }
    }
    Ok(())
}

fn merge_non_default(current: &mut Payment, patch: &Payment) {
    if patch.amount.is_some() {
        current.amount = patch.amount.clone();
    }
    if !patch.merchant.is_empty() {
        current.merchant = patch.merchant.clone();
    }
    if patch.state != 0 {
        current.state = patch.state;
    }
    if !patch.items.is_empty() {
        current.items = patch.items.clone();
    }
    current.labels.extend(patch.labels.clone());
    if patch.metadata.is_some() {
        current.metadata = patch.metadata.clone();
    }
    if patch.note.is_some() {
        current.note = patch.note.clone();
    }
    if !patch.tags.is_empty() {
        current.tags = patch.tags.clone();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::store::Store;

    fn pay_001() -> Payment {
        Store::seeded().payments.get("pay_001").cloned().unwrap()
    }

    #[test]
    fn masked_update_changes_only_named_fields() {
        let mut current = pay_001();
        let patch = Payment {
            note: Some("changed".into()),
            merchant: "merchants/other".into(),
            ..Default::default()
        };
        apply_update(&mut current, &patch, &["note".into()]).unwrap();
        assert_eq!(current.note.as_deref(), Some("changed"));
        assert_eq!(current.merchant, "merchants/acme");
    }

    #[test]
    fn unknown_mask_path_is_invalid_argument() {
        let mut current = pay_001();
        let err = apply_update(&mut current, &Payment::default(), &["bogus".into()]).unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument);
    }

    #[test]
    fn empty_mask_merges_set_fields() {
        let mut current = pay_001();
        let patch = Payment {
            tags: vec!["vip".into()],
            ..Default::default()
        };
        apply_update(&mut current, &patch, &[]).unwrap();
        assert_eq!(current.tags, vec!["vip".to_owned()]);
        assert!(current.amount.is_some());
    }
}
