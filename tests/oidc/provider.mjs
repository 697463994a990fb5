// A real OpenID Connect provider for the tests: panva's oidc-provider (OpenID Certified),
// configured with test accounts of weak and strong `acr` (some in directory `groups`, for
// roles mapped from a claim) and a login form of our own.
//
//   node provider.mjs PORT REDIRECT_URI     (OIDC_PROVIDER_MODULE: path of oidc-provider)
//
// Clients: `tilavaraus` (the app), `short-lived` (ID tokens valid for one second) and
// `wrong-audience` (ID tokens addressed to another service), all client_secret_basic.
// Prints "ready" on stdout when it listens.
import http from 'node:http';
import { pathToFileURL } from 'node:url';

const [port, redirectUri] = process.argv.slice(2);
const modulePath = process.env.OIDC_PROVIDER_MODULE;
const { default: Provider } = await import(pathToFileURL(modulePath).href);

const WEAK = 'urn:tilavaraus:test:acr:password';
const STRONG = 'http://ftn.ficora.fi/2017/loa3';
const ACCOUNTS = {
  'weak-resident': { acr: WEAK, name: 'Heikki Heikko', email: 'heikki@example.fi' },
  'strong-resident': { acr: STRONG, name: 'Vahva Asukas', email: 'vahva@example.fi' },
  // Has the e-mail address of an account that exists in the app: must not take it over.
  'same-email': { acr: WEAK, name: 'Someone Else', email: 'booker@example.fi' },
  // Members of directory groups, as Entra ID or Keycloak give them in a `groups` claim.
  'staff-member': {
    acr: WEAK, name: 'Sari Virkailija', email: 'sari@example.fi',
    groups: ['everyone', 'tilavaraus-staff'],
  },
  // Disabled, then erased, by the tests (each in a test of its own).
  'to-be-disabled': { acr: WEAK, name: 'Kalle Suljettava', email: 'kalle@example.fi' },
  'to-be-erased': { acr: STRONG, name: 'Eeva Poistettava', email: 'eeva@example.fi' },
  'city-admin': {
    acr: WEAK, name: 'Antti Ylläpitäjä', email: 'antti@example.fi',
    groups: ['tilavaraus-staff', 'tilavaraus-admin'],
  },
};
const secret = 'tilavaraus-test-secret';
const client = (id) => ({
  client_id: id,
  client_secret: secret,
  redirect_uris: [redirectUri],
  response_types: ['code'],
  grant_types: ['authorization_code'],
  token_endpoint_auth_method: 'client_secret_basic',
});

const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients: [client('tilavaraus'), client('short-lived'), client('wrong-audience')],
  pkce: { required: () => true },
  acrValues: [WEAK, STRONG],
  claims: {
    // acr in every ID token, as Keycloak gives it (oidc-provider gives it only when asked).
    acr: null, auth_time: null, sid: null, iss: null,
    openid: ['sub', 'acr', 'auth_time', 'groups'],
    profile: ['name'], email: ['email', 'email_verified'],
  },
  cookies: { keys: ['tilavaraus-test-cookie-key'] },
  features: { devInteractions: { enabled: false } },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  ttl: {
    IdToken: (ctx, token, c) => (c.clientId === 'short-lived' ? 1 : 3600),
  },
  async findAccount(ctx, sub) {
    const account = ACCOUNTS[sub];
    if (!account) return undefined;
    return {
      accountId: sub,
      async claims() {
        const found = { sub, name: account.name, email: account.email, email_verified: true };
        return account.groups ? { ...found, groups: account.groups } : found;
      },
    };
  },
  // Consent is not asked in the tests: every client gets the OpenID scopes it asks for.
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId
      || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) {
      const found = await ctx.oidc.provider.Grant.find(grantId);
      if (found) return found;
    }
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope('openid profile email');
    await grant.save();
    return grant;
  },
});

// The `wrong-audience` client's ID tokens name another service as their audience.
const issue = provider.IdToken.prototype.issue;
provider.IdToken.prototype.issue = async function issueFor(options) {
  if (this.client?.clientId !== 'wrong-audience') return issue.call(this, options);
  const real = this.client;
  this.client = new Proxy(real, {
    get: (target, key) => {
      if (key === 'clientId') return 'another-service';
      const value = target[key];
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  try {
    return await issue.call(this, options);
  } finally {
    this.client = real;
  }
};

const escape = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

async function interaction(req, res) {
  const match = req.url.match(/^\/interaction\/([\w-]+)(\/login)?$/);
  if (!match) return false;
  const details = await provider.interactionDetails(req, res);
  if (req.method === 'GET') {
    res.setHeader('Content-Type', 'text/html; charset=utf-8');
    res.end(`<!doctype html><html lang="en"><head><title>Test provider</title></head><body>
<main><h1>Test identity provider</h1>
<form method="post" action="/interaction/${escape(details.uid)}/login">
<label for="login">Account</label> <input id="login" name="login">
<button type="submit">Continue</button></form></main></body></html>`);
    return true;
  }
  let body = '';
  for await (const chunk of req) body += chunk;
  const login = new URLSearchParams(body).get('login') || '';
  const account = ACCOUNTS[login];
  const result = account
    ? { login: { accountId: login, acr: account.acr, amr: ['pwd'] } }
    : { error: 'access_denied', error_description: 'no such test account' };
  await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
  return true;
}

const callback = provider.callback();
http.createServer(async (req, res) => {
  try {
    if (!(await interaction(req, res))) callback(req, res);
  } catch (error) {
    console.error(error);
    res.statusCode = 500;
    res.end(String(error));
  }
}).listen(Number(port), '127.0.0.1', () => console.log('ready'));
