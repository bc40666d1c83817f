#!/usr/bin/env python3
"""Fills a database the way people use the service, against a running build of the service (demo mode, Development,
demo history off), so that the next build's upgrade test has real data made by the previous build:

  alice enrols an authenticator (TOTP) and gets recovery codes; demo-secops shares a record and changes a role;
  demo-crm sends access events (an export at night); carol opens the reviewer queue (the pseudonym key is made).

Usage: make-previous-build-db.py BASE_URL OUT.json   (OUT.json receives alice's TOTP key and recovery codes)
Standard library only. The committed fixture names the commit it was made with (README.md in this folder).
"""
import base64, hashlib, hmac, http.cookiejar, json, re, struct, sys, time, urllib.parse, urllib.request

base, out = sys.argv[1].rstrip('/'), sys.argv[2]

class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None

def opener():
    jar = http.cookiejar.CookieJar()
    return urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), NoRedirect)

def call(o, method, path, data=None, headers=None):
    body = None
    headers = dict(headers or {})
    if isinstance(data, dict) and headers.get('Content-Type') == 'application/json':
        body = json.dumps(data).encode()
    elif isinstance(data, dict):
        body = urllib.parse.urlencode(data).encode()
        headers.setdefault('Content-Type', 'application/x-www-form-urlencoded')
    elif isinstance(data, str):
        body = data.encode()
    req = urllib.request.Request(base + path, data=body, method=method, headers=headers)
    try:
        with o.open(req) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()

def antiforgery(page):
    return re.search(r'name="__RequestVerificationToken" type="hidden" value="([^"]+)"', page).group(1)

def sign_in(user, password):
    o = opener()
    _, page = call(o, 'GET', '/account/login')
    status, _ = call(o, 'POST', '/account/login', {'Username': user, 'Password': password, 'ReturnUrl': '/account', '__RequestVerificationToken': antiforgery(page)})
    assert status == 302, status
    return o

def totp(key_b32, at=None):
    key = base64.b32decode(key_b32.upper() + '=' * (-len(key_b32) % 8))
    counter = int((at or time.time()) // 30)
    mac = hmac.new(key, struct.pack('>Q', counter), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    return '%06d' % ((struct.unpack('>I', mac[offset:offset + 4])[0] & 0x7FFFFFFF) % 1000000)

def token(client, secret, scope):
    o = opener()
    auth = base64.b64encode(f'{client}:{secret}'.encode()).decode()
    status, body = call(o, 'POST', '/connect/token', {'grant_type': 'client_credentials', 'scope': scope}, {'Authorization': 'Basic ' + auth})
    assert status == 200, (status, body)
    return json.loads(body)['access_token']

# alice enrols TOTP
alice = sign_in('alice', 'Alice-Sells-Widgets-42')
_, page = call(alice, 'GET', '/account/two-factor')
key = re.search(r'<code id="shared-key">([^<]+)</code>', page).group(1).replace(' ', '')
status, page = call(alice, 'POST', '/account/two-factor?handler=Enable', {'Code': totp(key), '__RequestVerificationToken': antiforgery(page)})
codes = re.findall(r'<li><code>([^<]+)</code></li>', page)
assert status == 200 and len(codes) == 10, (status, len(codes))

# demo-secops: a share and a role change, through the admin API
admin = token('demo-secops', 'demo-secops-secret', 'identity.admin')
h = {'Authorization': 'Bearer ' + admin, 'Content-Type': 'application/json'}
_, users = call(opener(), 'GET', '/admin/api/users', headers=h)
ids = {u['user_name']: u['id'] for u in json.loads(users)['items']} if users.strip().startswith('{') else {u['user_name']: u['id'] for u in json.loads(users)}
status, body = call(opener(), 'POST', '/admin/api/shares', {'entity': 'contact', 'record_id': 'c-1001', 'record_business_unit': 'sales-west',
                                                           'principal_kind': 'user', 'principal_id': ids['ed'], 'actions': ['read']}, h)
assert status in (200, 201), (status, body)
status, body = call(opener(), 'PUT', '/admin/api/roles/marketing/privileges/lead/export', {'depth': 'business_unit'}, h)
assert status in (200, 204), (status, body)

# demo-crm: access events, with a night-time bulk export by alice
events = token('demo-crm', 'demo-crm-secret', 'events:write')
now = time.time()
lines = []
for day in range(1, 15):
    for i in range(5):
        t = time.strftime('%Y-%m-%dT%H:%M:%S+00:00', time.gmtime(now - day * 86400 - i * 600 + 17 * 3600 - (now % 86400)))
        lines.append(json.dumps({'event_id': f'e-{day}-{i}', 'timestamp': t, 'user_id': ids['alice'], 'user_name': 'alice', 'action': 'read', 'entity': 'contact', 'record_count': 1}))
t = time.strftime('%Y-%m-%dT%H:%M:%S+00:00', time.gmtime(now - 3600))
lines.append(json.dumps({'event_id': 'e-export', 'timestamp': t, 'user_id': ids['alice'], 'user_name': 'alice', 'action': 'export', 'entity': 'contact', 'record_count': 12000}))
status, body = call(opener(), 'POST', '/analyzer/events', '\n'.join(lines) + '\n', {'Authorization': 'Bearer ' + events, 'Content-Type': 'application/x-ndjson'})
assert status == 200, (status, body)

# carol opens the reviewer queue once findings exist (the pseudonym key is made on first use)
carol = sign_in('carol', 'Carol-Reads-The-Logs-42')
for _ in range(60):
    status, page = call(carol, 'GET', '/review')
    if 'user-' in page:
        break
    time.sleep(0.5)
assert 'user-' in page, 'no finding appeared in the queue'

with open(out, 'w') as f:
    json.dump({'alice_totp_key': key, 'alice_recovery_codes': codes}, f, indent=2)
print('filled: alice TOTP + 10 recovery codes, 1 share, 1 role change, %d events, queue seen by carol' % len(lines))
