import http from 'node:http';

/**
 * `POST` of JSON over kept-alive connections, for loads the bench paces itself. `fetch` costs the
 * bench about 2 ms of CPU a request here: at a few hundred requests a second that is a fifth of
 * the machine the service under test runs on, and what the pace then measures is the two of
 * them fighting over the cores.
 */
export function keepAlivePoster(maxSockets: number) {
  const agent = new http.Agent({ keepAlive: true, maxSockets });
  return {
    post(url: string, body: string, headers: Readonly<Record<string, string>>): Promise<{ status: number; headers: http.IncomingHttpHeaders }> {
      return new Promise((resolve, reject) => {
        const request = http.request(url, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers } }, (response) => {
          response.resume();
          response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers }));
          response.on('error', reject);
        });
        request.on('error', reject);
        request.end(body);
      });
    },
    close: () => agent.destroy(),
  };
}
