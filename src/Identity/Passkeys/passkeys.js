// Passkeys (WebAuthn) on the sign-in and account pages. Loaded from this origin (the pages' CSP allows this one tag by its nonce);
// no inline script. A form marked data-passkey="create" or "get" asks the server for options (a POST with the form's
// anti-forgery token to data-options), runs the browser's WebAuthn ceremony, puts the credential (WebAuthn Level 3
// §5.1 JSON form) in the form's hidden Credential field and submits the form; the server checks it.
(() => {
    'use strict';
    if (!window.PublicKeyCredential) {
        for (const form of document.querySelectorAll('form[data-passkey]')) {
            form.hidden = true;
        }
        return;
    }

    const fromBase64Url = value => {
        const base64 = value.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(value.length / 4) * 4, '=');
        return Uint8Array.from(atob(base64), c => c.charCodeAt(0)).buffer;
    };
    const toBase64Url = buffer => btoa(String.fromCharCode(...new Uint8Array(buffer))).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');

    const creationOptions = json => PublicKeyCredential.parseCreationOptionsFromJSON ? PublicKeyCredential.parseCreationOptionsFromJSON(json) : {
        ...json,
        challenge: fromBase64Url(json.challenge),
        user: { ...json.user, id: fromBase64Url(json.user.id) },
        excludeCredentials: (json.excludeCredentials || []).map(c => ({ ...c, id: fromBase64Url(c.id) })),
    };
    const requestOptions = json => PublicKeyCredential.parseRequestOptionsFromJSON ? PublicKeyCredential.parseRequestOptionsFromJSON(json) : {
        ...json,
        challenge: fromBase64Url(json.challenge),
        allowCredentials: (json.allowCredentials || []).map(c => ({ ...c, id: fromBase64Url(c.id) })),
    };
    const serialize = credential => {
        if (typeof credential.toJSON === 'function') {
            return JSON.stringify(credential.toJSON());
        }
        const r = credential.response;
        const response = { clientDataJSON: toBase64Url(r.clientDataJSON) };
        if (r.attestationObject) {
            response.attestationObject = toBase64Url(r.attestationObject);
            response.transports = r.getTransports ? r.getTransports() : [];
        } else {
            response.authenticatorData = toBase64Url(r.authenticatorData);
            response.signature = toBase64Url(r.signature);
            if (r.userHandle) {
                response.userHandle = toBase64Url(r.userHandle);
            }
        }
        return JSON.stringify({
            id: credential.id, rawId: toBase64Url(credential.rawId), type: credential.type,
            authenticatorAttachment: credential.authenticatorAttachment, clientExtensionResults: credential.getClientExtensionResults(), response,
        });
    };

    const status = (form, text) => {
        const element = document.getElementById(form.dataset.status || 'passkey-status');
        if (element) {
            element.textContent = text;
        }
    };

    const options = async form => {
        const body = new FormData(form);
        body.delete('Credential');
        const response = await fetch(form.dataset.options, { method: 'POST', body, credentials: 'same-origin' });
        if (!response.ok) {
            throw new Error('options ' + response.status);
        }
        return response.json();
    };

    let conditional = null;

    const run = async (form, mediation) => {
        const json = await options(form);
        let credential;
        if (form.dataset.passkey === 'create') {
            credential = await navigator.credentials.create({ publicKey: creationOptions(json) });
        } else {
            const request = { publicKey: requestOptions(json) };
            if (mediation) {
                conditional = new AbortController();
                request.mediation = mediation;
                request.signal = conditional.signal;
            }
            credential = await navigator.credentials.get(request);
        }
        if (!credential) {
            return;
        }
        form.querySelector('input[name="Credential"]').value = serialize(credential);
        form.submit();
    };

    for (const form of document.querySelectorAll('form[data-passkey]')) {
        form.addEventListener('submit', async event => {
            if (form.querySelector('input[name="Credential"]').value) {
                return;
            }
            event.preventDefault();
            if (conditional) {
                conditional.abort();
                conditional = null;
            }
            status(form, form.dataset.passkey === 'create' ? 'Follow your browser\'s prompt to create the passkey.' : 'Follow your browser\'s prompt to use your passkey.');
            try {
                await run(form);
            } catch (error) {
                status(form, (error && error.name === 'NotAllowedError')
                    ? 'No passkey was used: the prompt was cancelled or timed out. Try again.'
                    : 'The passkey could not be used (' + (error && error.name ? error.name : 'error') + '). Try again.');
            }
        });

        // Conditional UI (WebAuthn Level 3 §5.1.4.1 mediation "conditional"): passkeys offered in the user name's autofill.
        if (form.dataset.conditional === 'true' && PublicKeyCredential.isConditionalMediationAvailable) {
            PublicKeyCredential.isConditionalMediationAvailable().then(available => {
                if (available) {
                    run(form, 'conditional').catch(() => { /* aborted by the button, or nothing chosen */ });
                }
            });
        }
    }
})();
