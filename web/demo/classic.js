// The smallest client of the classic relay: one call at a time, no rooms.
// Like the classic client of the WebRTC lessons, it sends the description
// and the candidate as the browser's objects; it accepts the SDP as text
// too, from clients that send `localDescription.sdp`.
// `window.classic` exposes the state for tests.

const $ = (/** @type {string} */ id) => /** @type {any} */ (document.getElementById(id));
const ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`);
const send = (/** @type {object} */ m) => ws.send(JSON.stringify(m));
const state = { id: '', peers: /** @type {string[]} */ ([]), pc: /** @type {RTCPeerConnection|null} */ (null), peer: '' };
/** @type {any} */ (window).classic = state;

const local = navigator.mediaDevices.getUserMedia({ audio: true, video: true });
local.then((s) => ($('local').srcObject = s), (e) => ($('state').textContent = `no camera: ${e.name}`));

/** @param {string} peer */
async function connection(peer) {
  if (state.pc) return state.pc;
  const pc = new RTCPeerConnection({ iceServers: [] });
  state.pc = pc;
  state.peer = peer;
  const stream = await local.catch(() => null);
  for (const t of stream?.getTracks() ?? []) pc.addTrack(t, stream);
  pc.onicecandidate = (e) => e.candidate && send({ type: 'ice-candidate', target: peer, candidate: e.candidate });
  pc.ontrack = (e) => ($('remote').srcObject = e.streams[0]);
  pc.onconnectionstatechange = () => ($('state').textContent = pc.connectionState);
  return pc;
}

/**
 * The description object from either shape of `sdp`.
 * @param {'offer'|'answer'} type
 * @param {string | RTCSessionDescriptionInit} sdp
 */
function description(type, sdp) {
  return new RTCSessionDescription(typeof sdp === 'string' ? { type, sdp } : sdp);
}

/** @param {string} target */
async function call(target) {
  const pc = await connection(target);
  await pc.setLocalDescription(await pc.createOffer());
  send({ type: 'offer', target, sdp: pc.localDescription });
}

ws.onmessage = async (ev) => {
  const m = JSON.parse(ev.data);
  if (m.type === 'registered') {
    state.id = m.clientId;
    $('me').textContent = m.clientId;
    send({ type: 'list-clients' });
  } else if (m.type === 'clients-list') {
    state.peers = m.clients;
    $('peers').replaceChildren(...m.clients.map((/** @type {string} */ c) => new Option(c, c)));
  } else if (m.type === 'offer') {
    const pc = await connection(m.from);
    await pc.setRemoteDescription(description('offer', m.sdp));
    await pc.setLocalDescription(await pc.createAnswer());
    send({ type: 'answer', target: m.from, sdp: pc.localDescription });
  } else if (m.type === 'answer') {
    await state.pc?.setRemoteDescription(description('answer', m.sdp));
  } else if (m.type === 'ice-candidate' && m.candidate) {
    await state.pc?.addIceCandidate(new RTCIceCandidate(m.candidate));
  } else if (m.type === 'error') {
    $('state').textContent = `error: ${m.message}`;
  }
};
$('refresh').onclick = () => send({ type: 'list-clients' });
$('call').onclick = () => $('peers').value && call($('peers').value);
