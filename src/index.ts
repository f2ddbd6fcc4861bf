/**
 * @module stowage
 * The full package re-exports the client, so `import { Stowage, Volume } from
 * 'stowage'` works where the server package is installed. A program that only
 * talks to a server should depend on `@stowage/sdk` alone: no compiler, no
 * server code.
 */
export * from '@stowage/sdk';
