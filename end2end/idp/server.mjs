// Corral's test identity provider: a Keycloak-shaped OpenID Connect provider
// built on panva's oidc-provider (OpenID Certified), adapted from the team's
// recipe. Used by the browser tests and, optionally, by local runs. Real OP: authorization-code + PKCE (S256, required),
// RS256-signed ID tokens, JWKS, discovery, userinfo, refresh, revocation,
// introspection, RP-initiated logout. A real login form checks passwords.
//
//   node server.mjs            (env: OP_PORT=8080 OP_HOST=127.0.0.1 REALM=corral)
//
// Issuer: http://127.0.0.1:8080/realms/corral  (same path shape as Keycloak,
// so Corral's config differs from a real Keycloak only by base URL).
//
// Test controls (only with OP_TEST_CONTROLS=1, loopback only):
//   PUT  /test/users/<username>/groups   body: ["/team-a", ...]  change a user's groups
//   POST /test/tamper                    body: {"mode": "signature"|"audience"|"expired"|"nonce"}
//        the next ID token issued is broken that way (then tokens are good again)
import http from 'node:http';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Provider from 'oidc-provider';
import * as jose from 'jose';

const here = path.dirname(fileURLToPath(import.meta.url));
const HOST = process.env.OP_HOST || '127.0.0.1';
const PORT = Number(process.env.OP_PORT || 8080);
const REALM = process.env.REALM || 'corral';
const TEST_CONTROLS = process.env.OP_TEST_CONTROLS === '1';
const MOUNT = `/realms/${REALM}`;

// Listen first, so OP_PORT=0 lets the kernel choose a free port (no race
// between a test choosing a port and Node binding it); the issuer names the
// port actually bound. No request is handled before this module has run to
// its end: the handler is attached below, synchronously after this await.
const server = http.createServer();
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(PORT, HOST, resolve);
});
const BOUND_PORT = server.address().port;
const ISSUER = `http://${HOST}:${BOUND_PORT}${MOUNT}`;

// ---- users (Keycloak: users + groups + realm roles) ----
const USERS = JSON.parse(fs.readFileSync(process.env.OP_USERS || path.join(here, 'users.json'), 'utf8'));
const bySub = new Map(Object.entries(USERS).map(([username, u]) => [u.sub, { username, ...u }]));

// ---- signing key: RS256, persisted so tokens survive restarts ----
const jwksFile = process.env.OP_JWKS || path.join(here, 'jwks.private.json');
if (!fs.existsSync(jwksFile)) {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  fs.writeFileSync(jwksFile, JSON.stringify({ keys: [{ ...jwk, kid: crypto.randomUUID(), alg: 'RS256', use: 'sig' }] }, null, 2));
}
const jwks = JSON.parse(fs.readFileSync(jwksFile, 'utf8'));

const clients = JSON.parse(fs.readFileSync(process.env.OP_CLIENTS || path.join(here, 'clients.json'), 'utf8'));

const configuration = {
  clients,
  jwks,
  cookies: { keys: [process.env.OP_COOKIE_KEY || 'dev-cookie-key-change-me'] },
  pkce: { required: () => true },            // S256 only (oidc-provider v9 default)
  conformIdTokenClaims: false,               // put scope claims in the ID token, as Keycloak does
  claims: {
    // Keycloak's default client scopes + a "groups" mapper: always present
    openid: ['sub', 'preferred_username', 'groups', 'realm_access'],
    profile: ['name', 'given_name', 'family_name', 'preferred_username'],
    email: ['email', 'email_verified'],
  },
  scopes: ['openid', 'profile', 'email', 'offline_access'],
  features: {
    devInteractions: { enabled: false },      // our own login form below
    revocation: { enabled: true },
    introspection: { enabled: true },
    rpInitiatedLogout: { enabled: true },
  },
  // Keycloak issues refresh tokens without offline_access
  issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
  ttl: { AccessToken: 300, IdToken: 300, AuthorizationCode: 60, Interaction: 1800, Session: 36000, Grant: 36000, RefreshToken: 1800 },
  // Keycloak endpoint paths under /realms/<realm>/protocol/openid-connect/...
  routes: {
    authorization: '/protocol/openid-connect/auth',
    token: '/protocol/openid-connect/token',
    userinfo: '/protocol/openid-connect/userinfo',
    jwks: '/protocol/openid-connect/certs',
    end_session: '/protocol/openid-connect/logout',
    revocation: '/protocol/openid-connect/revoke',
    introspection: '/protocol/openid-connect/token/introspect',
  },
  interactions: { url: (ctx, interaction) => `${MOUNT}/interaction/${interaction.uid}` },
  // Keycloak client with "Consent required" off: grant what was asked for.
  async loadExistingGrant(ctx) {
    const { provider, client, session } = ctx.oidc;
    const grantId = ctx.oidc.result?.consent?.grantId || session.grantIdFor(client.clientId);
    let grant = grantId ? await provider.Grant.find(grantId) : undefined;
    if (!grant) grant = new provider.Grant({ clientId: client.clientId, accountId: session.accountId });
    grant.addOIDCScope([...ctx.oidc.requestParamOIDCScopes].join(' '));
    const claims = [...ctx.oidc.requestParamClaims];
    if (claims.length) grant.addOIDCClaims(claims);
    await grant.save();
    return grant;
  },
  async findAccount(ctx, sub) {
    const u = bySub.get(sub);
    if (!u) return undefined;
    return {
      accountId: sub,
      async claims() {
        return {
          sub,
          preferred_username: u.username,
          name: u.name,
          given_name: u.given_name,
          family_name: u.family_name,
          email: u.email,
          email_verified: true,
          groups: u.groups,                         // Keycloak "Group Membership" mapper (full path)
          realm_access: { roles: u.realm_roles },   // Keycloak "realm roles" mapper shape
        };
      },
    };
  },
  renderError(ctx, out) {
    ctx.type = 'html';
    ctx.body = `<!DOCTYPE html><title>Error</title><h1>${esc(out.error)}</h1><p id="error">${esc(out.error_description || '')}</p>`;
  },
};

const provider = new Provider(ISSUER, configuration);
provider.proxy = false;

// ---- test controls: a broken ID token on demand ----
let tamperMode = null;
const signingKey = await jose.importJWK(jwks.keys[0], 'RS256');
async function tamper(idToken, mode) {
  const [h, p, sig] = idToken.split('.');
  if (mode === 'signature') {
    const bytes = Buffer.from(sig, 'base64url');
    bytes[0] ^= 0xff;
    return `${h}.${p}.${bytes.toString('base64url')}`;
  }
  const header = JSON.parse(Buffer.from(h, 'base64url'));
  const claims = JSON.parse(Buffer.from(p, 'base64url'));
  const now = Math.floor(Date.now() / 1000);
  if (mode === 'audience') claims.aud = 'some-other-client';
  else if (mode === 'expired') { claims.iat = now - 7200; claims.exp = now - 3600; }
  else if (mode === 'nonce') claims.nonce = 'not-the-nonce-corral-sent';
  else throw new Error(`unknown tamper mode ${mode}`);
  return new jose.SignJWT(claims).setProtectedHeader({ alg: header.alg, kid: header.kid, typ: header.typ }).sign(signingKey);
}
provider.use(async (ctx, next) => {
  await next();
  if (tamperMode && ctx.path === '/protocol/openid-connect/token' && ctx.body && ctx.body.id_token) {
    const mode = tamperMode;
    tamperMode = null;
    ctx.body = { ...ctx.body, id_token: await tamper(ctx.body.id_token, mode) };
    console.log(`issued an ID token with a bad ${mode}`);
  }
});

async function testControl(req, res, url) {
  const json = (status, body) => { res.writeHead(status, { 'content-type': 'application/json' }); res.end(JSON.stringify(body)); };
  let body = '';
  for await (const chunk of req) body += chunk;
  const groups = /^\/test\/users\/([^/]+)\/groups$/.exec(url.pathname);
  if (groups && req.method === 'PUT') {
    const u = USERS[decodeURIComponent(groups[1])];
    if (!u) return json(404, { error: 'no such user' });
    const list = JSON.parse(body);
    if (!Array.isArray(list) || !list.every((g) => typeof g === 'string')) return json(400, { error: 'body must be an array of group paths' });
    u.groups = list;
    bySub.get(u.sub).groups = list;
    return json(200, { username: groups[1], groups: list });
  }
  if (url.pathname === '/test/tamper' && req.method === 'POST') {
    const { mode } = JSON.parse(body);
    if (!['signature', 'audience', 'expired', 'nonce'].includes(mode)) return json(400, { error: 'mode: signature, audience, expired or nonce' });
    tamperMode = mode;
    return json(200, { mode });
  }
  return json(404, { error: 'no such test control' });
}
const callback = provider.callback();

function esc(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
}

function loginPage(uid, clientId, error) {
  return `<!DOCTYPE html><html><head><meta charset="utf-8"><title>Sign in to ${esc(REALM)}</title></head>
<body><h1 id="kc-page-title">Sign in to your account</h1>
${error ? `<div id="input-error" class="alert-error">${esc(error)}</div>` : ''}
<form id="kc-form-login" method="post" action="${MOUNT}/interaction/${esc(uid)}/login">
<label for="username">Username or email</label><input id="username" name="username" autofocus autocomplete="username">
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password">
<input type="hidden" name="client_id" value="${esc(clientId)}">
<button id="kc-login" type="submit">Sign In</button>
</form></body></html>`;
}

async function readForm(req) {
  let body = '';
  for await (const chunk of req) { body += chunk; if (body.length > 1e5) throw new Error('body too large'); }
  return Object.fromEntries(new URLSearchParams(body));
}

async function interaction(req, res, uid, action) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) throw new Error('interaction uid mismatch');
  const { prompt, params } = details;
  const send = (status, html) => {
    res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    res.end(html);
  };
  if (req.method === 'GET' && !action) {
    if (prompt.name === 'login') return send(200, loginPage(uid, params.client_id));
    if (prompt.name === 'consent') {
      // auto-consent (first-party client)
      const grant = details.grantId ? await provider.Grant.find(details.grantId)
        : new provider.Grant({ accountId: details.session.accountId, clientId: params.client_id });
      const d = prompt.details;
      if (d.missingOIDCScope) grant.addOIDCScope(d.missingOIDCScope.join(' '));
      if (d.missingOIDCClaims) grant.addOIDCClaims(d.missingOIDCClaims);
      if (d.missingResourceScopes) for (const [ind, sc] of Object.entries(d.missingResourceScopes)) grant.addResourceScope(ind, sc.join(' '));
      const grantId = await grant.save();
      return provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
    }
    return send(400, `unsupported prompt ${esc(prompt.name)}`);
  }
  if (req.method === 'POST' && action === 'login') {
    const form = await readForm(req);
    const entry = Object.entries(USERS).find(([name, u]) => name === form.username || u.email === form.username);
    const ok = entry && typeof form.password === 'string'
      && crypto.timingSafeEqual(crypto.createHash('sha256').update(form.password).digest(),
        crypto.createHash('sha256').update(entry[1].password).digest());
    if (!ok) return send(200, loginPage(uid, params.client_id, 'Invalid username or password.'));
    return provider.interactionFinished(req, res, { login: { accountId: entry[1].sub } }, { mergeWithLastSubmission: false });
  }
  if (action === 'abort') {
    return provider.interactionFinished(req, res, { error: 'access_denied', error_description: 'End-User aborted interaction' }, { mergeWithLastSubmission: false });
  }
  return send(405, 'method not allowed');
}

const interactionRe = new RegExp(`^${MOUNT}/interaction/([A-Za-z0-9_-]+)(?:/(login|abort))?$`);

server.on('request', async (req, res) => {
  try {
    const url = new URL(req.url, ISSUER);
    if (url.pathname === '/health') { res.writeHead(200); return res.end('ok'); }
    if (TEST_CONTROLS && url.pathname.startsWith('/test/')) return await testControl(req, res, url);
    const m = interactionRe.exec(url.pathname);
    if (m) return await interaction(req, res, m[1], m[2]);
    if (url.pathname === MOUNT || url.pathname.startsWith(`${MOUNT}/`)) {
      // mount under /realms/<realm>, as express' app.use(MOUNT, ...) would
      req.originalUrl = req.url;
      req.url = req.url.slice(MOUNT.length) || '/';
      return callback(req, res);
    }
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('not found');
  } catch (err) {
    console.error(err);
    if (!res.headersSent) res.writeHead(400, { 'content-type': 'text/plain' });
    res.end(`error: ${err.message}`);
  }
});
console.log(`oidc-provider ${ISSUER} ready`);
// Tests read the bound port from here (written whole, then renamed).
if (process.env.OP_PORT_FILE) {
  fs.writeFileSync(`${process.env.OP_PORT_FILE}.tmp`, String(BOUND_PORT));
  fs.renameSync(`${process.env.OP_PORT_FILE}.tmp`, process.env.OP_PORT_FILE);
}
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => server.close(() => process.exit(0)));
