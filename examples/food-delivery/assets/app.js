// Perdure Eats: keeps the page live. The server sends the page's changing parts, rendered and
// escaped on the server, as server-sent events keyed by element id; forms marked data-js are
// sent with fetch so the page stays put and errors show next to the button.
'use strict';

(function () {
  const body = document.body;
  const view = body.dataset.live;

  function localTimes(root) {
    const today = new Date().toDateString();
    for (const t of root.querySelectorAll('time[datetime]')) {
      const d = new Date(t.dateTime);
      if (Number.isNaN(d.getTime())) continue;
      const hm = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
      t.textContent = d.toDateString() === today ? hm : `${d.toLocaleDateString()} ${hm}`;
      t.title = d.toString();
    }
  }

  function appBanner(text) {
    let el = document.getElementById('app-down');
    if (!text) { if (el) el.remove(); return; }
    if (!el) {
      el = document.createElement('p');
      el.id = 'app-down';
      el.className = 'banner error';
      document.querySelector('.banners').after(el);
    }
    el.textContent = text;
  }

  if (view && view !== 'none') {
    const params = new URLSearchParams({ view });
    if (body.dataset.order) params.set('id', body.dataset.order);
    const source = new EventSource(`/events?${params}`);
    source.onmessage = (e) => {
      appBanner(null);
      const parts = JSON.parse(e.data);
      for (const [id, html] of Object.entries(parts)) {
        const el = document.getElementById(id);
        if (el && el.dataset.html !== html) {
          el.dataset.html = html;
          el.innerHTML = html; // rendered and escaped by the server
          localTimes(el);
        }
      }
      body.dataset.updated = String(Date.now());
    };
    source.onerror = () => {
      if (source.readyState !== EventSource.OPEN) {
        appBanner('Lost the connection to this app; retrying…');
      }
    };
  }
  localTimes(document);

  function flash(form, text, isError) {
    const holder = form.closest('.card-body, li, .track-body') || form.parentElement;
    const p = holder.querySelector('.flash');
    if (!p) return;
    p.hidden = false;
    p.textContent = text;
    p.classList.toggle('error', isError);
    clearTimeout(p.timer);
    if (!isError) p.timer = setTimeout(() => { p.hidden = true; }, 6000);
  }

  document.addEventListener('submit', async (ev) => {
    const form = ev.target;
    if (!(form instanceof HTMLFormElement) || !form.hasAttribute('data-js')) return;
    ev.preventDefault();
    const button = form.querySelector('button');
    const label = button.textContent;
    button.disabled = true;
    button.textContent = form.dataset.busy || '…';
    try {
      const response = await fetch(form.action, {
        method: 'POST',
        headers: { Accept: 'application/json' },
        body: new URLSearchParams(new FormData(form)),
      });
      let answer;
      try { answer = await response.json(); } catch { answer = { error: `${response.status} ${response.statusText}` }; }
      // A new order id only once this one is placed (or refused for good): after a timeout or
      // an unreachable server, a retry must reuse the id so it cannot become a second order.
      const next = form.querySelector('input[name=order_id]');
      if (next && answer.next_order_id && response.status < 500) next.value = answer.next_order_id;
      if (!response.ok) throw new Error(answer.error || response.statusText);
      flash(form, answer.message || 'Done.', false);
    } catch (e) {
      flash(form, e.message === 'Failed to fetch' ? 'Cannot reach this app. Is it still running?' : e.message, true);
      button.disabled = false;
    } finally {
      button.textContent = label;
      // After a success, driver buttons are re-rendered (enabled or not) by the next live update.
      if (!form.closest('.driver')) button.disabled = false;
    }
  });
})();
