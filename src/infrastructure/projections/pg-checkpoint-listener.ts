import pg from 'pg';
import {
  checkpointChannel,
  parseCheckpointNotification,
  type CheckpointNotification,
  type CheckpointNotifications,
} from '../../projections/runtime/wait-for-position.js';
import { pinSearchPath } from '../postgres/search-path.js';

export type PgCheckpointListenerOptions = {
  readonly connectionString: string;
  /** Delay before reconnecting after the connection dropped. Default 1 s. */
  readonly reconnectMs?: number;
  readonly onError?: (error: unknown) => void;
};

/**
 * One `LISTEN projection_checkpoint` connection per process, fanned out to every waiting
 * request. Reconnects on its own; notifications sent while it was away are lost, which
 * `waitForPosition` covers by re-reading the checkpoints now and then.
 */
export class PgCheckpointListener implements CheckpointNotifications {
  private readonly listeners = new Set<(notification: CheckpointNotification) => void>();
  private client: pg.Client | undefined;
  private connections = 0;
  private listeningOn: pg.Client | undefined;
  private closed = false;
  private reconnectTimer: NodeJS.Timeout | undefined;

  constructor(private readonly options: PgCheckpointListenerOptions) {}

  /** Resolves once listening, so that a test can send right after. */
  async start(): Promise<void> {
    const client = new pg.Client({ connectionString: this.options.connectionString, application_name: 'checkpoint-listener', keepAlive: true });
    client.on('notification', (message) => {
      if (message.channel !== checkpointChannel || message.payload === undefined) return;
      const notification = parseCheckpointNotification(message.payload);
      if (notification) for (const listener of this.listeners) listener(notification);
    });
    client.on('error', (error) => this.lost(client, error));
    client.on('end', () => this.lost(client, new Error('listener connection ended')));
    this.client = client;
    await client.connect();
    await pinSearchPath(client);
    await client.query(`listen ${checkpointChannel}`);
    // Lost while subscribing: the reconnect under way will count.
    if (this.client !== client) return;
    this.connections += 1;
    this.listeningOn = client;
  }

  get epoch(): number | undefined {
    return this.listeningOn ? this.connections : undefined;
  }

  subscribe(listener: (notification: CheckpointNotification) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.listeningOn = undefined;
    clearTimeout(this.reconnectTimer);
    await this.client?.end().catch(() => undefined);
  }

  private lost(client: pg.Client, error: unknown): void {
    if (this.closed || this.client !== client) return;
    this.client = undefined;
    this.listeningOn = undefined;
    this.options.onError?.(error);
    client.end().catch(() => undefined);
    this.reconnectTimer = setTimeout(() => {
      this.start().catch((startError: unknown) => {
        if (this.client) this.lost(this.client, startError);
      });
    }, this.options.reconnectMs ?? 1000);
    this.reconnectTimer.unref();
  }
}
