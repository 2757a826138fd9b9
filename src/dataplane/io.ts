/**
 * Kept for importers outside the data plane (agent, crypto): the seams live in `seams.ts`.
 */
export * from './seams';
