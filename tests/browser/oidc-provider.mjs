// A real OpenID provider for the sign-in tests: oidc-provider (pinned in
// package.json), on 127.0.0.1, with one confidential client and its
// built-in (development) login and consent pages. Run by
// tests/src/oidc_browser.rs:
//
//   node tests/browser/oidc-provider.mjs CONFIG.json
//
// CONFIG: { "port": 0, "clientId": "...", "clientSecret": "...",
//           "redirectUri": "<trellis>/auth/oidc/callback" }
// (port 0 or absent: any free port). Once listening, prints one JSON line,
// {"issuer": "http://127.0.0.1:PORT"}, and serves until killed.
//
// Anyone may sign in with any password: the login is the email, vouched
// for (`email_verified: true`), and the subject is `sub-` + the login. The
// ID token carries only `sub`; the email and name come from UserInfo.

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import Provider from 'oidc-provider';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
for (const field of ['clientId', 'clientSecret', 'redirectUri']) {
  if (typeof config[field] !== 'string' || !config[field]) {
    console.error(`oidc-provider.mjs: the config has no ${field}`);
    process.exit(2);
  }
}

// The issuer names the port, so the port is bound before the provider exists.
const server = createServer();
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(config.port ?? 0, '127.0.0.1', resolve);
});
const issuer = `http://127.0.0.1:${server.address().port}`;

// A signing key of this run's own (the provider's built-in one is for
// development and says so on every start).
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: 'trellis-tests', use: 'sig', alg: 'RS256' };

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: config.clientId,
      client_secret: config.clientSecret,
      redirect_uris: [config.redirectUri],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    },
  ],
  // Every client, confidential or not, must send a PKCE challenge.
  pkce: { required: () => true },
  scopes: ['openid', 'email', 'profile'],
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name'],
  },
  // The default (conformIdTokenClaims: true) is kept: an ID token issued
  // with an access token carries `sub` only, and the email, email_verified
  // and name are served by the UserInfo endpoint, which Trellis then asks.
  // `id` is the subject, `sub-` + the login (see the middleware below).
  async findAccount(_ctx, id) {
    if (!id.startsWith('sub-')) return undefined;
    const email = id.slice('sub-'.length);
    return {
      accountId: id,
      async claims() {
        return { sub: id, email, email_verified: true, name: email.split('@')[0] };
      },
    };
  },
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  jwks: { keys: [signingKey] },
  features: { devInteractions: { enabled: true } },
});

// The development login form makes the login itself the account id, and
// so the subject. A real provider's subject is an id of its own, not the
// email: the login is turned into `sub-` + login before the form is read.
provider.use(async (ctx, next) => {
  if (ctx.method === 'POST' && /^\/interaction\/[^/]+$/.test(ctx.path)) {
    const chunks = [];
    for await (const chunk of ctx.req) chunks.push(chunk);
    const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
    if (form.get('prompt') === 'login' && form.get('login')) {
      form.set('login', `sub-${form.get('login').trim().toLowerCase()}`);
    }
    ctx.req.body = Object.fromEntries(form);
  }
  await next();
});
provider.on('server_error', (_ctx, error) => console.error('oidc-provider server_error:', error));

server.on('request', provider.callback());
console.log(JSON.stringify({ issuer }));

