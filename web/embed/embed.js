// The embeddable room snippet (a classic script, no modules):
//
//   <div id="room"></div>
//   <script src="https://SERVER/embed.js" data-room="standup" data-token="..."
//           data-target="#room" async></script>
//
// It mounts the room in an iframe served by SERVER and gives the host page a
// small postMessage API: `element.sfuRoom.join() / leave() / mute(true) /
// camera(false) / on('joined', fn)`, and DOM events `sfu-room:<type>` on the
// target element. Messages are only accepted from the iframe's own window
// and origin, and only sent to that origin. See docs/embedding.md.
(function () {
  'use strict';
  var script = /** @type {HTMLScriptElement|null} */ (document.currentScript);
  if (!script) return;
  var serverOrigin = new URL(script.src, location.href).origin;
  var PROTOCOL = 'sfu-room';

  /**
   * @param {HTMLIFrameElement} iframe
   * @param {HTMLElement} target
   */
  function RoomEmbed(iframe, target) {
    this.iframe = iframe;
    this.target = target;
    /** @type {Record<string, Function[]>} */
    this.handlers = {};
    this.participantCount = 0;
    this.state = 'loading';
    var self = this;
    window.addEventListener('message', function (e) {
      if (e.origin !== serverOrigin || e.source !== iframe.contentWindow) return;
      var m = e.data;
      if (!m || m.protocol !== PROTOCOL || typeof m.type !== 'string') return;
      if (m.type === 'participants') self.participantCount = m.count;
      if (m.type === 'joined') self.state = 'joined';
      if (m.type === 'left') self.state = 'left';
      (self.handlers[m.type] || []).slice().forEach(function (fn) {
        try {
          fn(m);
        } catch (err) {
          console.error(err);
        }
      });
      target.dispatchEvent(new CustomEvent(PROTOCOL + ':' + m.type, { detail: m }));
    });
  }
  RoomEmbed.prototype.post = function (type, extra) {
    var msg = Object.assign({ protocol: PROTOCOL, type: type }, extra || {});
    if (this.iframe.contentWindow) this.iframe.contentWindow.postMessage(msg, serverOrigin);
  };
  /** Joins (when mounted with data-autojoin="0", or after leaving). */
  RoomEmbed.prototype.join = function (opts) {
    this.post('join', opts);
  };
  RoomEmbed.prototype.leave = function () {
    this.post('leave');
  };
  /** @param {boolean} muted */
  RoomEmbed.prototype.mute = function (muted) {
    this.post('mute', { muted: muted !== false });
  };
  /** @param {boolean} on */
  RoomEmbed.prototype.camera = function (on) {
    this.post('camera', { on: on !== false });
  };
  /** @param {string} type joined | left | participants | error | media | ready */
  RoomEmbed.prototype.on = function (type, fn) {
    (this.handlers[type] = this.handlers[type] || []).push(fn);
    var list = this.handlers[type];
    return function () {
      var i = list.indexOf(fn);
      if (i >= 0) list.splice(i, 1);
    };
  };

  /**
   * Mounts a room into `target`.
   * @param {HTMLElement} target
   * @param {{ room: string, token?: string, name?: string, mode?: string, autojoin?: boolean, height?: string }} o
   */
  function mount(target, o) {
    var iframe = document.createElement('iframe');
    var params = new URLSearchParams();
    params.set('room', o.room);
    if (o.token) params.set('token', o.token);
    if (o.name) params.set('name', o.name);
    if (o.mode) params.set('mode', o.mode);
    params.set('autojoin', o.autojoin === false ? '0' : '1');
    params.set('parent', location.origin);
    // The fragment is not sent to the server, so the token stays out of its logs.
    iframe.src = serverOrigin + '/embed/room.html#' + params.toString();
    // `fullscreen` in `allow` is all it takes; the old `allowfullscreen`
    // attribute beside it only earns a console warning.
    iframe.allow = 'camera; microphone; display-capture; autoplay; fullscreen';
    iframe.title = 'Video room ' + o.room;
    iframe.style.cssText = 'width:100%;height:' + (o.height || '540px') + ';border:0;border-radius:8px;background:#111418';
    var api = new RoomEmbed(iframe, target);
    /** @type {any} */ (target).sfuRoom = api;
    target.appendChild(iframe);
    return api;
  }

  var g = /** @type {any} */ (window);
  g.SfuRoom = g.SfuRoom || { mount: mount, origin: serverOrigin };

  function auto() {
    var d = script.dataset;
    if (!d.room) return;
    var target = d.target ? document.querySelector(d.target) : null;
    if (!target) {
      target = document.createElement('div');
      script.parentNode.insertBefore(target, script);
    }
    mount(/** @type {HTMLElement} */ (target), {
      room: d.room,
      token: d.token,
      name: d.name,
      mode: d.mode,
      autojoin: d.autojoin !== '0',
      height: d.height,
    });
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', auto);
  else auto();
})();
