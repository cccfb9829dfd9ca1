//! The steps of a steward's action, written once over [`UnifyTx`] for both stores: each
//! runs in one transaction, republishes what it changed through [`publish`] and appends
//! to the audit log.

use std::collections::{BTreeSet, HashMap};
use std::time::SystemTime;

use super::unify::{lock_standing, publish, UnifyTx};
use super::{AuditEntry, StoreError};
use crate::resolve::{keys_of_mentions, Key, Placement, Settings};
use crate::stewardship::{StewardAction, StewardOutcome, Verdict};
use crate::unified::{kind_of_id, EntityId};

/// Carries out `action` for `steward` (an identity such as `steward:li`).
pub(crate) async fn act<T: UnifyTx>(
    tx: &T,
    action: &StewardAction,
    steward: &str,
    settings: &Settings,
) -> Result<StewardOutcome, StoreError> {
    let outcome = match action {
        StewardAction::Decide { pair, verdict } => {
            let row = tx
                .review_pair(*pair)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("review pair {pair}")))?;
            if row.status != "open" {
                return Err(StoreError::Refused(format!(
                    "review pair {pair} is already closed ({})",
                    row.status
                )));
            }
            // The side the queue showed: the entity the mention is in now (a newer version
            // of its record may have moved it), else the one it founded.
            let current = tx.mention_entity(&row.mention).await?;
            let entity = live(tx, current.as_ref().unwrap_or(&row.entity)).await?;
            let candidate = live(tx, &row.candidate).await?;
            let outcome = match verdict {
                Verdict::Same if entity == candidate => StewardOutcome {
                    survivor: Some(entity),
                    ..StewardOutcome::default()
                },
                Verdict::Same => {
                    let outcome = merge(tx, &entity, &candidate, settings).await?;
                    // Explanations say the steward put it there, not that it is queued.
                    if let Some(survivor) = &outcome.survivor {
                        if tx.mention_entity(&row.mention).await?.as_ref() == Some(survivor) {
                            tx.move_mention(&row.mention, survivor, &decided("same")).await?;
                        }
                    }
                    outcome
                }
                Verdict::Different => {
                    if entity == candidate {
                        return Err(StoreError::Refused(format!(
                            "the pair is one entity ({entity}) by now: split the mention out instead"
                        )));
                    }
                    tx.set_apart(&entity, &candidate, true).await?;
                    if tx.mention_entity(&row.mention).await?.as_ref() == Some(&entity) {
                        tx.pin(&row.mention, &entity).await?;
                        tx.move_mention(&row.mention, &entity, &decided("different")).await?;
                    }
                    let both: BTreeSet<EntityId> = [entity, candidate].into_iter().collect();
                    let standing = lock_standing(tx, both.clone()).await?;
                    publish(tx, &both, HashMap::new(), &[], &standing, settings).await?;
                    StewardOutcome {
                        changed: both.into_iter().collect(),
                        ..StewardOutcome::default()
                    }
                }
            };
            let status = match verdict {
                Verdict::Same => "same",
                Verdict::Different => "different",
            };
            tx.close_review(*pair, status, steward).await?;
            outcome
        }
        StewardAction::Merge { entity, other } => {
            let a = live(tx, entity).await?;
            let b = live(tx, other).await?;
            if a == b {
                return Err(StoreError::Refused(format!(
                    "{entity} and {other} are one entity ({a}) already"
                )));
            }
            if kind_of_id(&a) != kind_of_id(&b) {
                return Err(StoreError::Refused(
                    "a person and an organisation cannot be merged".to_owned(),
                ));
            }
            merge(tx, &a, &b, settings).await?
        }
        StewardAction::Split { mention } => {
            let from = tx
                .mention_entity(mention)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("current mention {mention:?}")))?;
            let kind =
                kind_of_id(&from).ok_or_else(|| StoreError::Internal(format!("malformed entity id {from:?}")))?;
            let mut rebuild: BTreeSet<EntityId> = BTreeSet::from([from.clone()]);
            rebuild.extend(tx.related_entities(std::slice::from_ref(&from)).await?);
            let standing = lock_standing(tx, rebuild.clone()).await?;
            let mentions = tx
                .entity_mentions(std::slice::from_ref(&from))
                .await?
                .remove(&from)
                .unwrap_or_default();
            if mentions.len() < 2 {
                return Err(StoreError::Refused(format!("the mention is the only source of {from}")));
            }
            let created = tx
                .create_entities(&[kind])
                .await?
                .pop()
                .ok_or_else(|| StoreError::Internal("no entity created for the split".to_owned()))?;
            tx.move_mention(
                mention,
                &created,
                &Placement::Steward {
                    decision: "split".to_owned(),
                },
            )
            .await?;
            tx.pin(mention, &created).await?;
            tx.set_apart(&from, &created, true).await?;
            // Keys only the split mention carried follow it.
            let staying = keys_of_mentions(mentions.iter().filter(|m| &m.source != mention).map(|m| &m.mention));
            let leaving: Vec<(Key, EntityId)> =
                keys_of_mentions(mentions.iter().filter(|m| &m.source == mention).map(|m| &m.mention))
                    .into_iter()
                    .filter(|k| !staying.contains(k))
                    .map(|k| (k, created.clone()))
                    .collect();
            tx.point_keys(&leaving).await?;
            rebuild.insert(created.clone());
            publish(tx, &rebuild, HashMap::new(), &[], &standing, settings).await?;
            StewardOutcome {
                created: Some(created),
                changed: rebuild.into_iter().collect(),
                ..StewardOutcome::default()
            }
        }
    };
    let (what, subject) = action.audit();
    tx.append_audit(&AuditEntry {
        at: SystemTime::now(),
        identity: steward.to_owned(),
        action: format!("steward.{what}"),
        subject,
        purpose: "stewardship".to_owned(),
        outcome: "done".to_owned(),
        trace_id: crate::telemetry::current_trace_id(),
    })
    .await?;
    Ok(outcome)
}

/// The placement of a mention a steward's verdict left where it is.
fn decided(verdict: &str) -> Placement {
    Placement::Steward {
        decision: verdict.to_owned(),
    }
}

/// The live entity an ID names now (itself, or the survivor it was merged into).
async fn live<T: UnifyTx>(tx: &T, id: &EntityId) -> Result<EntityId, StoreError> {
    let redirects = tx.redirects(std::slice::from_ref(id)).await?;
    let live = redirects.get(id).cloned().unwrap_or_else(|| id.clone());
    if tx.lock_entities(std::slice::from_ref(&live)).await?.is_empty() {
        return Err(StoreError::NotFound(format!("entity {id}")));
    }
    Ok(live)
}

/// Merges two live entities: the older ID survives, the other redirects to it.
async fn merge<T: UnifyTx>(
    tx: &T,
    a: &EntityId,
    b: &EntityId,
    settings: &crate::resolve::Settings,
) -> Result<StewardOutcome, StoreError> {
    let (survivor, absorbed) = if a < b {
        (a.clone(), b.clone())
    } else {
        (b.clone(), a.clone())
    };
    let mut rebuild: BTreeSet<EntityId> = BTreeSet::from([survivor.clone()]);
    rebuild.extend(
        tx.related_entities(std::slice::from_ref(&absorbed))
            .await?
            .into_iter()
            .filter(|id| *id != absorbed),
    );
    let mut locked = rebuild.clone();
    locked.insert(absorbed.clone());
    let standing = lock_standing(tx, locked).await?;
    tx.set_apart(&survivor, &absorbed, false).await?;
    tx.merge(&absorbed, &survivor).await?;
    publish(
        tx,
        &rebuild,
        HashMap::new(),
        &[(absorbed.clone(), survivor.clone())],
        &standing,
        settings,
    )
    .await?;
    let mut changed: Vec<EntityId> = rebuild.into_iter().collect();
    changed.push(absorbed);
    Ok(StewardOutcome {
        survivor: Some(survivor),
        changed,
        ..StewardOutcome::default()
    })
}
