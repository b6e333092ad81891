// ts-client.mjs: the MCP TypeScript SDK's client (pinned in package.json)
// against an MCP endpoint behind mcpgate, for mcpgate's interoperability
// tests.
//
// Knowing only the endpoint, it gets a 401, discovers the protected resource
// metadata and the authorization server metadata, registers dynamically and
// runs authorization code + PKCE with `resource`. The "browser" is a fetch
// loop that keeps cookies and follows redirects through the authorization
// server's (test-only, automatic) login and consent until it reaches the
// redirect URI with ?code=. It then reconnects, lists tools and calls
// echo.
//
// Usage: node ts-client.mjs <mcp endpoint>
// Prints one JSON line {ok, tools, echo, token_aud, token_typ, ...} and exits
// 0; on failure prints {ok:false, error} and exits 1.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';

const endpoint = process.argv[2];
const redirectUri = 'http://127.0.0.1:1/callback'; // never fetched

// browse follows the authorization URL through the authorization server,
// keeping cookies, and returns the redirect to redirectUri.
async function browse(start) {
  const jar = new Map();
  let url = new URL(start);
  for (let hop = 0; hop < 20; hop++) {
    if (url.href.startsWith(redirectUri)) return url;
    const cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
    const res = await fetch(url, { redirect: 'manual', headers: cookie ? { cookie } : {} });
    for (const sc of res.headers.getSetCookie()) {
      const [pair] = sc.split(';');
      const i = pair.indexOf('=');
      jar.set(pair.slice(0, i).trim(), pair.slice(i + 1).trim());
    }
    const loc = res.headers.get('location');
    if (res.status < 300 || res.status >= 400 || !loc) {
      throw new Error(`authorization stopped at ${url.origin}${url.pathname}: HTTP ${res.status} ${(await res.text()).slice(0, 300)}`);
    }
    await res.arrayBuffer().catch(() => {});
    url = new URL(loc, url);
  }
  throw new Error('too many redirects during authorization');
}

// An in-memory OAuthClientProvider.
class MemoryProvider {
  constructor() {
    this.client = undefined;
    this.toks = undefined;
    this.verifier = undefined;
    this.authURL = undefined;
    this.code = undefined;
  }
  get redirectUrl() { return redirectUri; }
  get clientMetadata() {
    return { client_name: 'mcpgate interop ts-client', redirect_uris: [redirectUri], grant_types: ['authorization_code'], response_types: ['code'], token_endpoint_auth_method: 'none' };
  }
  clientInformation() { return this.client; }
  saveClientInformation(info) { this.client = info; }
  tokens() { return this.toks; }
  saveTokens(t) { this.toks = t; }
  saveCodeVerifier(v) { this.verifier = v; }
  codeVerifier() { return this.verifier; }
  async redirectToAuthorization(url) {
    this.authURL = new URL(url);
    const back = await browse(url);
    const err = back.searchParams.get('error');
    if (err) throw new Error(`authorization error ${err}: ${back.searchParams.get('error_description')}`);
    this.code = back.searchParams.get('code');
    if (!this.code) throw new Error(`no code in ${back.pathname}${back.search}`);
  }
}

function jwtPart(tok, i) {
  const parts = String(tok).split('.');
  if (parts.length !== 3) throw new Error('access token is not a JWT');
  return JSON.parse(Buffer.from(parts[i], 'base64url').toString());
}

async function main() {
  if (!endpoint) throw new Error('usage: node ts-client.mjs <mcp endpoint>');
  const provider = new MemoryProvider();
  const info = { name: 'mcpgate-interop-ts', version: '1.0.0' };

  let transport = new StreamableHTTPClientTransport(new URL(endpoint), { authProvider: provider });
  let client = new Client(info);
  let first401 = false;
  try {
    await client.connect(transport);
  } catch (err) {
    if (!(err instanceof UnauthorizedError) || !provider.code) throw err;
    first401 = true;
    await transport.finishAuth(provider.code);
    await client.close().catch(() => {});
    transport = new StreamableHTTPClientTransport(new URL(endpoint), { authProvider: provider });
    client = new Client(info);
    await client.connect(transport);
  }
  const { tools } = await client.listTools();
  const res = await client.callTool({ name: 'echo', arguments: { text: 'hello from ts' } });
  await client.close();
  const at = provider.tokens()?.access_token;
  const q = provider.authURL?.searchParams;
  return {
    ok: !res.isError,
    first_401: first401,
    tools: tools.map((t) => t.name),
    echo: (res.content || []).filter((c) => c.type === 'text').map((c) => c.text).join(''),
    token_aud: jwtPart(at, 1).aud,
    token_typ: jwtPart(at, 0).typ,
    token_scope: jwtPart(at, 1).scope,
    auth_request: q ? { resource: q.get('resource'), scope: q.get('scope'), code_challenge_method: q.get('code_challenge_method') } : null,
  };
}

main().then(
  (out) => { process.stdout.write(JSON.stringify(out) + '\n'); process.exit(out.ok ? 0 : 1); },
  (err) => { process.stdout.write(JSON.stringify({ ok: false, error: String(err?.stack || err) }) + '\n'); process.exit(1); },
);
