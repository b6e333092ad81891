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
// With --step-up=TOOL it then calls TOOL, which needs a scope the token does
// not hold: mcpgate answers 403 insufficient_scope naming the scopes to ask
// for. The SDK's transport parses that challenge and starts a new
// authorization with them (auth() ends in a redirect); this script finishes
// it like the first one (finishAuth with the code, reconnect) and calls TOOL
// again. SDK 1.32.2 registers its client with the scope of the first
// challenge only, and an authorization server that enforces registered
// scopes (oidc-provider does) refuses the wider request with invalid_scope;
// the script then drops the registration and runs the SDK's auth() again
// with the challenged scope, which registers anew (reported as
// step_up.reregistered).
//
// Usage: node ts-client.mjs <mcp endpoint> [--step-up=TOOL]
// Prints one JSON line {ok, tools, echo, token_aud, token_typ, ...} and exits
// 0; on failure prints {ok:false, error} and exits 1.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError, auth } from '@modelcontextprotocol/sdk/client/auth.js';

const endpoint = process.argv[2];
const stepUpTool = (process.argv.slice(3).find((a) => a.startsWith('--step-up=')) || '').slice('--step-up='.length);
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
    this.authURLs = [];
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
    this.authURLs.push(this.authURL);
    this.code = undefined;
    this.authError = undefined;
    const back = await browse(url);
    const err = back.searchParams.get('error');
    this.authError = err || undefined;
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

// responses records the status and challenge of every answer from the MCP
// endpoint.
const responses = [];
const registrations = []; // the scope of each dynamic registration
async function recordingFetch(url, init) {
  if (String(url).endsWith('/reg') && init?.body) registrations.push(JSON.parse(String(init.body)).scope ?? null);
  const res = await fetch(url, init);
  if (String(url) === endpoint) responses.push({ status: res.status, challenge: res.headers.get('www-authenticate') });
  return res;
}

function authRequest(u) {
  const q = u?.searchParams;
  return q ? { resource: q.get('resource'), scope: q.get('scope'), code_challenge_method: q.get('code_challenge_method') } : null;
}

function text(res) {
  return (res.content || []).filter((c) => c.type === 'text').map((c) => c.text).join('');
}

// stepUp calls tool, expecting the SDK to start a new authorization on the
// 403 insufficient_scope challenge, finishes it and calls tool again.
async function stepUp(provider, info, client, transport, tool) {
  const before = responses.length;
  const attempts = provider.authURLs.length;
  let firstErr;
  try {
    const r = await client.callTool({ name: tool, arguments: {} });
    throw new Error(`tools/call ${tool} succeeded before step-up: ${JSON.stringify(r)}`);
  } catch (err) {
    firstErr = err;
  }
  const refused = responses.slice(before).find((r) => r.status === 403) || null;
  // The authorization the SDK itself started on the 403, if any.
  const sdkAuth = authRequest(provider.authURLs[attempts]);
  let reregistered = false;
  if (provider.authURLs.length > attempts && provider.authError === 'invalid_scope' && refused?.challenge) {
    reregistered = true;
    const param = (name) => (refused.challenge.match(new RegExp(`${name}="([^"]*)"`)) || [])[1];
    provider.client = undefined;
    const result = await auth(provider, {
      serverUrl: new URL(endpoint),
      scope: param('scope'),
      resourceMetadataUrl: param('resource_metadata') ? new URL(param('resource_metadata')) : undefined,
      fetchFn: recordingFetch,
    });
    if (result !== 'REDIRECT') throw new Error(`auth() after re-registration returned ${result}`);
  }
  if (provider.authURLs.length === attempts || !provider.code) {
    throw new Error(`the SDK did not re-authorize after ${tool} was refused (${firstErr}); responses ${JSON.stringify(responses.slice(before))}`);
  }
  const sdkError = firstErr?.constructor?.name || String(firstErr);
  await transport.finishAuth(provider.code);
  await client.close().catch(() => {});
  transport = new StreamableHTTPClientTransport(new URL(endpoint), { authProvider: provider, fetch: recordingFetch });
  client = new Client(info);
  await client.connect(transport);
  const res = await client.callTool({ name: tool, arguments: {} });
  await client.close();
  const at = provider.tokens()?.access_token;
  return {
    refused_status: refused?.status ?? null,
    challenge: refused?.challenge ?? null,
    sdk_error: sdkError,
    sdk_auth_request: sdkAuth,
    reregistered,
    registrations,
    auth_request: authRequest(provider.authURLs.at(-1)),
    is_error: !!res.isError,
    result: text(res),
    token_scope: jwtPart(at, 1).scope,
  };
}

async function main() {
  if (!endpoint) throw new Error('usage: node ts-client.mjs <mcp endpoint> [--step-up=TOOL]');
  const provider = new MemoryProvider();
  const info = { name: 'mcpgate-interop-ts', version: '1.0.0' };

  let transport = new StreamableHTTPClientTransport(new URL(endpoint), { authProvider: provider, fetch: recordingFetch });
  let client = new Client(info);
  let first401 = false;
  try {
    await client.connect(transport);
  } catch (err) {
    if (!(err instanceof UnauthorizedError) || !provider.code) throw err;
    first401 = true;
    await transport.finishAuth(provider.code);
    await client.close().catch(() => {});
    transport = new StreamableHTTPClientTransport(new URL(endpoint), { authProvider: provider, fetch: recordingFetch });
    client = new Client(info);
    await client.connect(transport);
  }
  const { tools } = await client.listTools();
  const res = await client.callTool({ name: 'echo', arguments: { text: 'hello from ts' } });
  const protocolVersion = transport.protocolVersion;
  const at = provider.tokens()?.access_token;
  const firstAuth = authRequest(provider.authURLs[0]);
  const first = { token_aud: jwtPart(at, 1).aud, token_typ: jwtPart(at, 0).typ, token_scope: jwtPart(at, 1).scope };
  let stepped = null;
  if (stepUpTool) {
    stepped = await stepUp(provider, info, client, transport, stepUpTool);
  } else {
    await client.close();
  }
  return {
    ok: !res.isError && (!stepped || !stepped.is_error),
    first_401: first401,
    tools: tools.map((t) => t.name),
    echo: text(res),
    protocol_version: protocolVersion,
    ...first,
    auth_request: firstAuth,
    step_up: stepped,
  };
}

main().then(
  (out) => { process.stdout.write(JSON.stringify(out) + '\n'); process.exit(out.ok ? 0 : 1); },
  (err) => { process.stdout.write(JSON.stringify({ ok: false, error: String(err?.stack || err) }) + '\n'); process.exit(1); },
);
