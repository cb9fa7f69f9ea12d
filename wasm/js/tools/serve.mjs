#!/usr/bin/env node
// A small static file server for the repository, on 127.0.0.1 only: the
// playground (examples/web/) and the browser tests import the built package
// from /wasm/pkg/. `node wasm/js/tools/serve.mjs [PORT]` (or `cargo xtask wasm serve`).
import http from 'node:http';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm',
  '.css': 'text/css; charset=utf-8',
  '.ts': 'text/plain; charset=utf-8',
  '.md': 'text/plain; charset=utf-8',
  '.jsonl': 'text/plain; charset=utf-8',
};

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

/**
 * Serves `root` read-only. `handler(req, res)` may answer a request first
 * (return true when it did). Resolves to `{server, url}` once listening.
 */
export function serveStatic({ root = REPO_ROOT, port = 0, handler } = {}) {
  const server = http.createServer(async (req, res) => {
    try {
      if (handler && (await handler(req, res))) return;
      const url = new URL(req.url, 'http://localhost');
      if (url.pathname === '/favicon.ico') {
        res.writeHead(204).end();
        return;
      }
      let file = path.join(root, decodeURIComponent(url.pathname));
      if (!file.startsWith(root)) {
        res.writeHead(403).end();
        return;
      }
      if ((await stat(file).catch(() => null))?.isDirectory()) file = path.join(file, 'index.html');
      const body = await readFile(file);
      res.writeHead(200, {
        'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream',
        'cache-control': 'no-store',
      });
      res.end(body);
    } catch {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      resolve({ server, url: `http://127.0.0.1:${server.address().port}` });
    });
  });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const port = Number(process.argv[2] ?? 8787);
  const { url } = await serveStatic({ port });
  console.log(`serving ${REPO_ROOT} on ${url}`);
  console.log(`playground: ${url}/examples/web/`);
}
