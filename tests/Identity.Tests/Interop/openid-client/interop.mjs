// Drives the Identity module with openid-client 6 (a certified OpenID Connect relying party) and jose, DPoP included.
// Usage: node interop.mjs ISSUER   (prints one "ok <scenario>" line per scenario; exits non-zero on the first failure)
import * as client from 'openid-client';
import * as jose from 'jose';

const issuer = new URL(process.argv[2]);
const insecure = { execute: [client.allowInsecureRequests] }; // loopback HTTP in tests only

function check(condition, message) {
  if (!condition) throw new Error(message);
}

// A browser in a few lines: follows nothing by itself, keeps cookies, submits the sign-in form.
class Browser {
  cookies = new Map();

  async get(url) { return this.send(url, { method: 'GET' }); }

  async send(url, init) {
    const headers = new Headers(init.headers ?? {});
    if (this.cookies.size) headers.set('cookie', [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; '));
    const response = await fetch(url, { ...init, headers, redirect: 'manual' });
    for (const line of response.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const index = pair.indexOf('=');
      this.cookies.set(pair.slice(0, index), pair.slice(index + 1));
    }
    return response;
  }

  // Follows redirects on the server's own origin and stops at the first one that leaves it (the client's callback).
  async authorize(url, userName, password) {
    let response = await this.get(url);
    for (let hops = 0; hops < 10; hops++) {
      check(response.status === 302, `expected a redirect, got ${response.status}: ${await response.text()}`);
      const location = new URL(response.headers.get('location'), issuer);
      if (location.origin !== issuer.origin) return location;
      if (location.pathname === '/account/login') {
        const page = await (await this.get(location)).text();
        const token = /name="__RequestVerificationToken" type="hidden" value="([^"]+)"/.exec(page)?.[1];
        check(token, 'no anti-forgery token on the sign-in page');
        const form = new URLSearchParams({
          Username: userName, Password: password,
          ReturnUrl: location.searchParams.get('ReturnUrl'), __RequestVerificationToken: token,
        });
        response = await this.send(new URL('/account/login', issuer), {
          method: 'POST', body: form, headers: { 'content-type': 'application/x-www-form-urlencoded' },
        });
      } else {
        response = await this.get(location);
      }
    }
    throw new Error('too many redirects');
  }
}

const scenarios = [];
const scenario = (name, run) => scenarios.push([name, run]);
const state = {};

scenario('discovery', async () => {
  state.crm = await client.discovery(issuer, 'demo-crm', 'demo-crm-secret', undefined, insecure);
  const metadata = state.crm.serverMetadata();
  check(metadata.issuer === issuer.href, `issuer ${metadata.issuer}`);
  check(metadata.code_challenge_methods_supported?.join() === 'S256', 'S256 only');
});

scenario('client_credentials', async () => {
  const tokens = await client.clientCredentialsGrant(state.crm, { scope: 'crm.api' });
  check(tokens.token_type.toLowerCase() === 'bearer', 'bearer token');
  state.clientToken = tokens.access_token;
});

scenario('jose verifies the access token against JWKS as at+jwt and rejects a tampered one', async () => {
  const jwks = jose.createRemoteJWKSet(new URL(state.crm.serverMetadata().jwks_uri));
  const { payload, protectedHeader } = await jose.jwtVerify(state.clientToken, jwks, { issuer: issuer.href, audience: 'crm-api', typ: 'at+jwt' });
  check(protectedHeader.alg === 'ES256' && payload.client_id === 'demo-crm', 'claims');
  const [header, body, signature] = state.clientToken.split('.');
  const forged = jose.base64url.encode(JSON.stringify({ ...payload, scope: 'identity.admin' }));
  let rejected = false;
  try { await jose.jwtVerify(`${header}.${forged}.${signature}`, jwks, { issuer: issuer.href }); } catch { rejected = true; }
  check(rejected && body !== forged, 'a tampered token must not verify');
});

scenario('authorization code with PKCE through the sign-in form', async () => {
  const verifier = client.randomPKCECodeVerifier();
  const expectedState = client.randomState();
  const expectedNonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(state.crm, {
    redirect_uri: 'http://localhost:5081/signin-oidc',
    scope: 'openid profile email roles offline_access crm.api',
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state: expectedState,
    nonce: expectedNonce,
  });
  const callback = await new Browser().authorize(url, 'alice', 'Alice-Sells-Widgets-42');
  const tokens = await client.authorizationCodeGrant(state.crm, callback, { pkceCodeVerifier: verifier, expectedState, expectedNonce, idTokenExpected: true });
  const claims = tokens.claims();
  check(claims.preferred_username === 'alice' && claims.tenant === 'demo', `id token claims ${JSON.stringify(claims)}`);
  state.user = tokens;
});

scenario('userinfo', async () => {
  const info = await client.fetchUserInfo(state.crm, state.user.access_token, state.user.claims().sub);
  check(info.email === 'alice@demo.example' && info.role?.includes('sales_rep'), JSON.stringify(info));
});

scenario('refresh rotates the refresh token', async () => {
  const refreshed = await client.refreshTokenGrant(state.crm, state.user.refresh_token);
  check(refreshed.refresh_token && refreshed.refresh_token !== state.user.refresh_token, 'a new refresh token');
  state.refreshed = refreshed;
});

scenario('introspection', async () => {
  const active = await client.tokenIntrospection(state.crm, state.refreshed.access_token);
  check(active.active === true && active.sub === state.user.claims().sub, JSON.stringify(active));
});

scenario('revocation, then introspection says inactive', async () => {
  await client.tokenRevocation(state.crm, state.clientToken);
  const result = await client.tokenIntrospection(state.crm, state.clientToken);
  check(result.active === false, JSON.stringify(result));
  await client.tokenRevocation(state.crm, state.refreshed.refresh_token);
  let refused = false;
  try { await client.refreshTokenGrant(state.crm, state.refreshed.refresh_token); } catch (e) { refused = e.error === 'invalid_grant'; }
  check(refused, 'a revoked refresh token must be refused with invalid_grant');
});

scenario('pushed authorization request (RFC 9126) with PKCE', async () => {
  const spa = await client.discovery(issuer, 'demo-crm', 'demo-crm-secret', undefined, insecure);
  const verifier = client.randomPKCECodeVerifier();
  const url = await client.buildAuthorizationUrlWithPAR(spa, {
    redirect_uri: 'http://localhost:5081/signin-oidc',
    scope: 'openid crm.api',
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
  });
  check(url.searchParams.has('request_uri'), 'request_uri');
  const callback = await new Browser().authorize(url, 'bob', 'Bob-Manages-The-Team-42');
  const tokens = await client.authorizationCodeGrant(spa, callback, { pkceCodeVerifier: verifier, idTokenExpected: true });
  check(tokens.claims().preferred_username === undefined && tokens.claims().sub, 'profile claims only with the profile scope');
});

scenario('DPoP (RFC 9449): a bound client-credentials token works at the decision API with proofs, and not as a bearer token', async () => {
  const dpop = client.getDPoPHandle(state.crm, await client.randomDPoPKeyPair('ES256'));
  const tokens = await client.clientCredentialsGrant(state.crm, { scope: 'authz.decide' }, { DPoP: dpop });
  check(tokens.token_type.toLowerCase() === 'dpop', `token_type ${tokens.token_type}`);
  const body = JSON.stringify({ user_id: state.user.claims().sub, entity: 'contact', action: 'read' });
  const url = new URL('authz/v1/check', issuer);
  const response = await client.fetchProtectedResource(state.crm, tokens.access_token, url, 'POST', body,
    new Headers({ 'content-type': 'application/json' }), { DPoP: dpop });
  check(response.status === 200, `decision API with DPoP: ${response.status} ${response.headers.get('www-authenticate')}`);
  const stolen = await fetch(url, { method: 'POST', body, headers: { authorization: `Bearer ${tokens.access_token}`, 'content-type': 'application/json' } });
  check(stolen.status === 401, `the bound token as bearer: ${stolen.status}`);
});

scenario('DPoP (RFC 9449): authorization code and refresh bound to the key', async () => {
  const dpop = client.getDPoPHandle(state.crm, await client.randomDPoPKeyPair('ES256'));
  const verifier = client.randomPKCECodeVerifier();
  const url = client.buildAuthorizationUrl(state.crm, {
    redirect_uri: 'http://localhost:5081/signin-oidc',
    scope: 'openid offline_access authz.decide',
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
  });
  const callback = await new Browser().authorize(url, 'alice', 'Alice-Sells-Widgets-42');
  const tokens = await client.authorizationCodeGrant(state.crm, callback, { pkceCodeVerifier: verifier, idTokenExpected: true }, undefined, { DPoP: dpop });
  check(tokens.token_type.toLowerCase() === 'dpop', `code token_type ${tokens.token_type}`);
  const refreshed = await client.refreshTokenGrant(state.crm, tokens.refresh_token, undefined, { DPoP: dpop });
  check(refreshed.token_type.toLowerCase() === 'dpop', `refresh token_type ${refreshed.token_type}`);
  const payload = jose.decodeJwt(refreshed.access_token);
  check(payload?.cnf?.jkt, 'cnf.jkt in the refreshed access token');
  const info = await client.fetchUserInfo(state.crm, refreshed.access_token, tokens.claims().sub, { DPoP: dpop });
  check(info.sub === tokens.claims().sub, `userinfo with DPoP ${JSON.stringify(info)}`);
});

for (const [name, run] of scenarios) {
  try {
    await run();
    console.log(`ok ${name}`);
  } catch (error) {
    console.log(`FAIL ${name}: ${error?.stack ?? error}${error?.cause ? ` cause: ${JSON.stringify(error.cause)}` : ''}`);
    process.exit(1);
  }
}
