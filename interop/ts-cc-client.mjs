// ts-cc-client.mjs: the MCP TypeScript SDK's client (pinned in package.json)
// authenticating as a service with the SDK's ClientCredentialsProvider
// (OAuth client_credentials, client_secret_basic), against an MCP endpoint
// behind mcpgate, for mcpgate's interoperability tests.
//
// Knowing the endpoint and its own client credentials, it gets a 401,
// discovers the protected resource metadata and the authorization server
// metadata, requests a token with grant_type=client_credentials, its
// configured scope and the `resource` of the metadata, then lists tools and
// calls echo.
//
// Usage: MCP_CLIENT_ID=... MCP_CLIENT_SECRET=... MCP_ISSUER=... MCP_SCOPE=... \
//          node ts-cc-client.mjs <mcp endpoint>
// The secret comes from the environment, never argv (visible in ps).
// Prints one JSON line {ok, first_401, tools, echo, token_aud, ...} and exits
// 0; on failure prints {ok:false, error} and exits 1.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ClientCredentialsProvider } from '@modelcontextprotocol/sdk/client/auth-extensions.js';

const endpoint = process.argv[2];
const { MCP_CLIENT_ID: clientId, MCP_CLIENT_SECRET: clientSecret, MCP_ISSUER: expectedIssuer, MCP_SCOPE: scope } = process.env;

const responses = [];
const tokenRequests = [];
async function recordingFetch(url, init) {
  const res = await fetch(url, init);
  if (String(url) === endpoint) responses.push(res.status);
  if (String(url).endsWith('/token') && init?.body) {
    const p = new URLSearchParams(String(init.body));
    tokenRequests.push({ grant_type: p.get('grant_type'), scope: p.get('scope'), resource: p.get('resource') });
  }
  return res;
}

function jwtPart(tok, i) {
  const parts = String(tok).split('.');
  if (parts.length !== 3) throw new Error('access token is not a JWT');
  return JSON.parse(Buffer.from(parts[i], 'base64url').toString());
}

async function main() {
  if (!endpoint || !clientId || !clientSecret || !expectedIssuer) {
    throw new Error('usage: MCP_CLIENT_ID=... MCP_CLIENT_SECRET=... MCP_ISSUER=... [MCP_SCOPE=...] node ts-cc-client.mjs <mcp endpoint>');
  }
  const provider = new ClientCredentialsProvider({ clientId, clientSecret, expectedIssuer, scope, clientName: 'mcpgate interop ts-cc-client' });
  // The SDK's auth() passes the transport's fetch to discovery and the
  // token request, so both are recorded.
  const transport = new StreamableHTTPClientTransport(new URL(endpoint), { authProvider: provider, fetch: recordingFetch });
  const client = new Client({ name: 'mcpgate-interop-ts-cc', version: '1.0.0' });
  await client.connect(transport);
  const { tools } = await client.listTools();
  const res = await client.callTool({ name: 'echo', arguments: { text: 'hello from service' } });
  await client.close();
  const at = provider.tokens()?.access_token;
  const claims = jwtPart(at, 1);
  return {
    ok: !res.isError,
    first_401: responses[0] === 401,
    tools: tools.map((t) => t.name),
    echo: (res.content || []).filter((c) => c.type === 'text').map((c) => c.text).join(''),
    token_aud: claims.aud,
    token_scope: claims.scope,
    token_sub: claims.sub,
    token_client_id: claims.client_id,
    token_requests: tokenRequests,
  };
}

main().then(
  (out) => { process.stdout.write(JSON.stringify(out) + '\n'); process.exit(out.ok ? 0 : 1); },
  (err) => { process.stdout.write(JSON.stringify({ ok: false, error: String(err?.stack || err) }) + '\n'); process.exit(1); },
);
