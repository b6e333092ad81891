// op.mjs: a TEST-ONLY OAuth 2.1 authorization server built on oidc-provider
// (pinned in package.json), for mcpgate's interoperability tests.
//
// It listens on 127.0.0.1 on a free port, signs JWT access tokens (RFC 9068,
// typ at+jwt) with an ES256 key generated at start, audience-restricted to
// the `resource` of the request (RFC 8707). Dynamic client registration,
// PKCE (S256), introspection, revocation and client_credentials are on.
//
// Its interaction endpoint logs in the fixed user "alice" WITHOUT ANY
// CREDENTIAL and grants every scope and resource asked for: never run it
// anywhere but a test.
//
// Usage: node op.mjs [--access-token-ttl=SECONDS] [--opaque-resource=URL ...] [scope ...]
//   scope ...              scopes of every resource server (default mcp:tools)
//   --access-token-ttl=N   lifetime of every access token, in seconds
//                          (default: oidc-provider's, 1h)
//   --opaque-resource=URL  access tokens for this resource are opaque
//                          (introspect them) instead of RFC 9068 JWTs
// Prints one JSON line {"issuer": "..."} on stdout when ready; exits when
// stdin closes.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import http from 'node:http';

// oidc-provider prints an "Unsupported runtime" warning on Node 20 at import
// (it still works there); keep stdout for the ready line only.
const { default: Provider } = await import('oidc-provider');

const flags = process.argv.slice(2).filter((a) => a.startsWith('--'));
const positional = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const resourceScopes = positional.length ? positional : ['mcp:tools'];
let accessTokenTTL;
const opaqueResources = new Set();
for (const f of flags) {
  const [name, value = ''] = f.split(/=(.*)/s);
  if (name === '--access-token-ttl' && /^[1-9][0-9]*$/.test(value)) accessTokenTTL = Number(value);
  else if (name === '--opaque-resource' && value) opaqueResources.add(value);
  else {
    console.error(`op.mjs: bad flag ${f}`);
    process.exit(2);
  }
}
const user = 'alice';

const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: 'es256-' + randomBytes(4).toString('hex'), alg: 'ES256', use: 'sig' };

let handler = (_req, res) => { res.writeHead(503).end(); };
const server = http.createServer((req, res) => handler(req, res));
await new Promise((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  jwks: { keys: [signingKey] },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  scopes: ['openid', 'offline_access', ...resourceScopes],
  clientDefaults: { id_token_signed_response_alg: 'ES256', grant_types: ['authorization_code'], response_types: ['code'] },
  enabledJWA: { idTokenSigningAlgValues: ['ES256'] },
  pkce: { required: () => true },
  findAccount: async (_ctx, id) => ({ accountId: id, claims: async () => ({ sub: id }) }),
  features: {
    devInteractions: { enabled: false },
    registration: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      // The `resource` of the authorization request is used at the token
      // endpoint too, when the token request names none.
      defaultResource: (_ctx, _client, oneOf) => (oneOf ? oneOf : undefined),
      useGrantedResource: () => true,
      getResourceServerInfo: (_ctx, resourceIndicator) => ({
        scope: resourceScopes.join(' '),
        audience: resourceIndicator,
        ...(accessTokenTTL ? { accessTokenTTL } : {}),
        ...(opaqueResources.has(resourceIndicator)
          ? { accessTokenFormat: 'opaque' }
          : { accessTokenFormat: 'jwt', jwt: { sign: { alg: 'ES256' } } }),
      }),
    },
  },
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
});
provider.on('server_error', (_ctx, err) => console.error('op.mjs server_error:', err));

// interact completes the login and consent prompts for alice (test only).
async function interact(req, res) {
  try {
    const details = await provider.interactionDetails(req, res);
    const { prompt, params, session, grantId } = details;
    if (prompt.name === 'login') {
      await provider.interactionFinished(req, res, { login: { accountId: user } }, { mergeWithLastSubmission: false });
      return;
    }
    const grant = grantId
      ? await provider.Grant.find(grantId)
      : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    const d = prompt.details || {};
    if (d.missingOIDCScope) grant.addOIDCScope(d.missingOIDCScope.join(' '));
    if (d.missingOIDCClaims) grant.addOIDCClaims(d.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(d.missingResourceScopes || {})) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
    const id = await grant.save();
    await provider.interactionFinished(req, res, { consent: { grantId: id } }, { mergeWithLastSubmission: true });
  } catch (err) {
    console.error('op.mjs interaction:', err);
    res.writeHead(500, { 'content-type': 'text/plain' }).end(String(err));
  }
}

const callback = provider.callback();
handler = (req, res) => (req.url.startsWith('/interaction/') ? interact(req, res) : callback(req, res));

process.stdout.write(JSON.stringify({ issuer }) + '\n');
process.stdin.on('end', () => { server.close(); process.exit(0); });
process.stdin.on('error', () => process.exit(0));
process.stdin.resume();
