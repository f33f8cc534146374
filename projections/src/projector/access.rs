//! API keys, whether credentials are required, account restrictions and the
//! engine's last checkpoint: what the operator console and the auditor page show.

use super::*;

impl Projector {
    pub(super) fn access(&mut self, at: At, event: &Event) -> Result<(), ProjectionError> {
        match event {
            Event::ApiKeyCreated {
                key,
                role,
                account,
                secret_hash,
            } => {
                let view = ApiKeyView {
                    key: *key,
                    role: *role,
                    account: *account,
                    secret_hash: *secret_hash,
                };
                self.put(Key::new(keys::API_KEY).u64(key.0).build(), enc(&view));
            }
            Event::ApiKeyRevoked { key } => self.del(Key::new(keys::API_KEY).u64(key.0).build()),
            Event::CredentialsRequired { required } => {
                self.put(keys::CREDENTIALS_REQUIRED.to_vec(), enc(required))
            }
            Event::AccountRestrictionsSet {
                account,
                can_trade,
                can_withdraw,
            } => {
                let view = RestrictionsView {
                    account: *account,
                    can_trade: *can_trade,
                    can_withdraw: *can_withdraw,
                    updated_ms: at.time_ms,
                };
                self.put(
                    Key::new(keys::RESTRICTIONS).u64(account.0).build(),
                    enc(&view),
                );
            }
            Event::Checkpoint {
                commands_applied,
                state_hash,
            } => {
                let view = EngineCheckpointView {
                    seq: at.seq,
                    time_ms: at.time_ms,
                    command_offset: at.command_offset,
                    commands_applied: *commands_applied,
                    state_hash: *state_hash,
                };
                self.put(keys::ENGINE_CHECKPOINT.to_vec(), enc(&view));
            }
            Event::LiabilitiesCommitted(c) => {
                let view = LiabilityRoundView {
                    commitment: c.clone(),
                    seq: at.seq,
                    time_ms: at.time_ms,
                };
                self.put(
                    Key::new(keys::LIABILITY_ROUND).u64(c.round).build(),
                    enc(&view),
                );
            }
            _ => {} // not this view's
        }
        Ok(())
    }
}

/// The queries this view answers.
impl Views {
    pub fn api_key(&self, key: ApiKeyId) -> Result<Option<ApiKeyView>, ProjectionError> {
        self.get(&Key::new(keys::API_KEY).u64(key.0).build())
    }

    /// Whether the engine requires credentials on every command.
    pub fn credentials_required(&self) -> Result<bool, ProjectionError> {
        Ok(self
            .get::<bool>(keys::CREDENTIALS_REQUIRED)?
            .unwrap_or(false))
    }

    pub fn api_keys(&self) -> Result<Vec<ApiKeyView>, ProjectionError> {
        self.scan(vec![keys::API_KEY])
    }

    /// The engine's last checkpoint, once one has been written.
    pub fn engine_checkpoint(&self) -> Result<Option<EngineCheckpointView>, ProjectionError> {
        self.get(keys::ENGINE_CHECKPOINT)
    }

    /// The proof-of-liabilities rounds, oldest first.
    pub fn liability_rounds(&self) -> Result<Vec<LiabilityRoundView>, ProjectionError> {
        self.scan(vec![keys::LIABILITY_ROUND])
    }

    pub fn liability_round(
        &self,
        round: u64,
    ) -> Result<Option<LiabilityRoundView>, ProjectionError> {
        self.get(&Key::new(keys::LIABILITY_ROUND).u64(round).build())
    }

    /// Every account an operator has set restrictions on (lifted ones included).
    pub fn restricted_accounts(&self) -> Result<Vec<RestrictionsView>, ProjectionError> {
        self.scan(vec![keys::RESTRICTIONS])
    }
}
