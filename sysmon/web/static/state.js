/* The page's shared state, in one object so every module reads the same range, clock
 * offset and zoom. Nothing in here touches the DOM or the network. */

export const LIVE_WINDOW = 300;
export const RANGES = {
  live: LIVE_WINDOW, '1h': 3600, '24h': 86400, '7d': 7 * 86400, '30d': 30 * 86400, '1y': 365 * 86400,
};

export const state = {
  system: null,
  thresholds: {},
  range: 'live',
  cores: [],
  interval: 1, // seconds between snapshots, learnt from the stream
  serverOffset: 0, // server clock minus browser clock, seconds
  lastTs: 0, // newest snapshot time: the right edge of the live window
  latest: null, // newest snapshot
  // Snapshots of the last live window (processes stripped): appended to a chart once its
  // history has arrived, so nothing pushed while a request ran is lost.
  recent: [],
  historyGen: 0, // bumped by every range change; late answers of an older one are dropped
  zoom: null, // {min, max} in epoch seconds, shared by every chart; null = whole range
  firstChartMarked: false,
  // Hosts (hosts.js): the store's hosts when it holds several (else null: no picker),
  // the picked one for history (null: this server's own, no host= sent) and this
  // server's host name (from /api/v1/system).
  hosts: null,
  host: null,
  localHost: '',
};

export const $ = (sel, root = document) => root.querySelector(sel);

export function nowServer() {
  return Date.now() / 1000 + state.serverOffset;
}

export function rememberSnapshot(snap) {
  state.recent.push({ timestamp: snap.timestamp, metrics: snap.metrics || {} });
  const oldest = snap.timestamp - LIVE_WINDOW;
  let drop = 0;
  while (drop < state.recent.length && state.recent[drop].timestamp < oldest) drop += 1;
  if (drop) state.recent.splice(0, drop);
}
