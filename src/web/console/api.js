// The console's HTTP calls: JSON in and out, the agent token as a Bearer header, errors as
// `ApiError` carrying the wire code (`{"code","error","message"}` bodies). File links never
// carry the token: a click asks for a short-lived signed link and follows that.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message || `HTTP ${status}`);
    this.status = status;
    this.code = code;
  }
}

let token = null;

export function setToken(t) {
  token = t;
}

export function getToken() {
  return token;
}

export async function api(path, { method = 'GET', body } = {}) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (token) headers.Authorization = `Bearer ${token}`;
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'omit' });
  let data = null;
  const text = await res.text();
  if (text) {
    try {
      data = JSON.parse(text);
    } catch (e) {
      data = null;
    }
  }
  if (!res.ok) {
    throw new ApiError(res.status, data && data.code, (data && data.message) || `HTTP ${res.status}`);
  }
  return data;
}

/** The plain URL of a chat file (it needs credentials: a click goes through `openFile`). */
export function fileHref(d) {
  return `/api/files/${encodeURIComponent(d.id)}`;
}

/** Downloads a chat file through a signed link the node issues for this agent (60 s). */
export async function openFile(d, onError) {
  try {
    const link = await api(`/api/files/${encodeURIComponent(d.id)}/link`, { method: 'POST' });
    const a = document.createElement('a');
    a.href = link.url;
    a.download = d.name || '';
    a.rel = 'noopener';
    document.body.appendChild(a);
    a.click();
    a.remove();
  } catch (e) {
    if (onError) onError(e.message);
  }
}
