import type { AccessRecord } from '../../../src/application/audit/access-log.js';

/** A granted read of nobody's data by the `probe` actor: an access record whose content does not matter. */
export const probeAccess = (requestId: string): AccessRecord => ({
  at: new Date(),
  actorId: 'probe',
  actorRoles: [],
  action: 'GET /probe',
  resource: '/probe',
  patientId: null,
  outcome: 'granted',
  statusCode: 200,
  ip: null,
  userAgent: null,
  requestId,
});
