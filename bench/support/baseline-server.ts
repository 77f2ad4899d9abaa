// Baselines for bench/http.ts: what fastify alone does on this machine against the same
// PostgreSQL. Started as its own process: `node --import tsx bench/support/baseline-server.ts`
// with DATABASE_URL and PORT.
import Fastify from 'fastify';
import pg from 'pg';

const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 10 });
await pool.query('CREATE TABLE IF NOT EXISTS bench_rows (id bigserial PRIMARY KEY, payload jsonb NOT NULL)');
await pool.query(`INSERT INTO bench_rows (payload) SELECT jsonb_build_object('n', g) FROM generate_series(1, 10000) g`);

const app = Fastify();
app.get('/hello', async () => ({ hello: 'world' }));
app.post('/insert', async (request) => {
  const { rows } = await pool.query('INSERT INTO bench_rows (payload) VALUES ($1) RETURNING id', [JSON.stringify(request.body)]);
  return { id: rows[0]?.id };
});
app.get('/select', async () => {
  const id = 1 + Math.floor(Math.random() * 10_000);
  const { rows } = await pool.query('SELECT id, payload FROM bench_rows WHERE id = $1', [id]);
  return rows[0] ?? null;
});
await app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' });
process.on('SIGTERM', () => void app.close().then(() => pool.end()).then(() => process.exit(0)));
