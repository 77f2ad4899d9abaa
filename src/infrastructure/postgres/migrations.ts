import type { Migration } from 'kysely';
import { auditMigration } from '../audit/audit.migration.js';
import { appendBatchLocksMigration } from '../pg-event-store/append-batch-locks.migration.js';
import { appendBatchesMigration } from '../pg-event-store/append-batches.migration.js';
import { eventStoreMigration } from '../pg-event-store/pg-event-store.migration.js';
import { eventLogIdentityMigration } from '../event-log-identity/event-log-identity.migration.js';
import { functionSearchPathMigration } from './function-search-path.migration.js';
import { identityMigration } from '../identity/identity.migration.js';
import { loginAttemptsUnknownMigration } from '../identity/login-attempts-unknown.migration.js';
import { securityLogAppendOnlyMigration } from '../identity/security-log-append-only.migration.js';
import { idempotencyClaimTokensMigration } from '../idempotency/idempotency-claim-tokens.migration.js';
import { idempotencyHashVersionsMigration } from '../idempotency/idempotency-hash-versions.migration.js';
import { idempotencyMigration } from '../idempotency/idempotency.migration.js';
import { idempotencySubjectsMigration } from '../idempotency/idempotency-subjects.migration.js';
import { masterKeyClaimMigration } from '../privacy/master-key-claim.migration.js';
import { subjectKeysErasedAtMigration } from '../privacy/subject-keys-erased-at.migration.js';
import { subjectKeysKeptMigration } from '../privacy/subject-keys-kept.migration.js';
import { subjectKeysMigration } from '../privacy/subject-keys.migration.js';
import { subjectKeysWrappedWithMigration } from '../privacy/subject-keys-wrapped-with.migration.js';
import { processCheckpointsMigration } from '../process-checkpoints/process-checkpoints.migration.js';
import { projectionCheckpointsMigration } from '../../projections/runtime/projection-checkpoints.migration.js';
import { projectionRebuildRequestsMigration } from '../../projections/runtime/projection-rebuild-requests.migration.js';
import { simulatedPaymentGatewayMigration } from '../simulated-payment-gateway/simulated-payment-gateway.migration.js';

/**
 * Every schema migration, by name; kysely applies them in name order. Each module keeps its
 * migration beside its code and registers it here under a numbered name.
 */
export const migrations: Record<string, Migration> = {
  '0001_event_store': eventStoreMigration,
  '0100_identity': identityMigration,
  '0110_idempotency': idempotencyMigration,
  '0200_projections': projectionCheckpointsMigration,
  '0300_payments': processCheckpointsMigration,
  '0400_audit': auditMigration,
  '0500_subject_keys': subjectKeysMigration,
  '0600_append_batches': appendBatchesMigration,
  '0610_append_batch_locks': appendBatchLocksMigration,
  '0620_security_log_append_only': securityLogAppendOnlyMigration,
  '0630_idempotency_claim_tokens': idempotencyClaimTokensMigration,
  '0640_login_attempts_unknown': loginAttemptsUnknownMigration,
  '0650_idempotency_hash_versions': idempotencyHashVersionsMigration,
  '0660_simulated_payment_gateway': simulatedPaymentGatewayMigration,
  '0670_subject_keys_erased_at': subjectKeysErasedAtMigration,
  '0680_idempotency_subjects': idempotencySubjectsMigration,
  '0690_event_log_identity': eventLogIdentityMigration,
  '0700_function_search_path': functionSearchPathMigration,
  '0710_subject_keys_kept': subjectKeysKeptMigration,
  '0720_subject_keys_wrapped_with': subjectKeysWrappedWithMigration,
  '0730_projection_rebuild_requests': projectionRebuildRequestsMigration,
  '0740_master_key_claim': masterKeyClaimMigration,
};
