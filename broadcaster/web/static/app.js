// Progressive enhancement only: every page works without this file (docs/web.md).
"use strict";

function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

// --- Live progress of a run (dashboard, campaign page) ---------------------------------------------------
// Every element with data-progress-url is polled every 2 s; its figures, <progress> bar and run status are
// updated from the JSON, and polling stops when the run is finished. Without this script the page shows the
// figures of the moment it was loaded.
const PROGRESS_EVERY_MS = 2000;

function groupDigits(value) {
  const lang = document.documentElement.lang === "en" ? "en-US" : "vi-VN";
  return Number(value).toLocaleString(lang);
}

function renderFigures(list, figures, channelLabels) {
  const channels = Object.keys(figures).sort();
  if (channels.length === 0) {
    return;
  }
  const items = channels.map((channel) => {
    const per = figures[channel];
    const item = document.createElement("li");
    const name = document.createElement("strong");
    name.textContent = channelLabels[channel] || channel;
    item.append(name, ": " + ["sent", "delivered", "failed"]
      .map((figure) => `${list.dataset["label" + figure[0].toUpperCase() + figure.slice(1)]} ${groupDigits(per[figure])}`)
      .join(" · "));
    return item;
  });
  list.replaceChildren(...items);
}

function showProgress(element, data) {
  const list = element.querySelector("[data-figures]");
  if (list) {
    renderFigures(list, data.figures, data.channel_labels || {});
  }
  const bar = element.querySelector("[data-progress-bar]");
  if (bar) {
    bar.max = data.planned || 1;
    bar.value = data.done;
  }
  const text = element.querySelector("[data-progress-text]");
  if (text) {
    text.textContent = `${groupDigits(data.done)} / ${groupDigits(data.planned)}`;
  }
  const status = element.querySelector("[data-run-status]");
  if (status) {
    status.textContent = data.status_label;
  }
}

function followProgress(element) {
  const url = element.dataset.progressUrl;
  const poll = async () => {
    try {
      const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (!response.ok) {
        return; // signed out or gone: stop; the figures of the last answer stay
      }
      const data = await response.json();
      showProgress(element, data);
      if (!data.finished) {
        window.setTimeout(poll, PROGRESS_EVERY_MS);
      }
    } catch (error) {
      window.setTimeout(poll, PROGRESS_EVERY_MS * 5); // the network hiccuped: try again, less often
    }
  };
  window.setTimeout(poll, PROGRESS_EVERY_MS);
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-progress-url]").forEach(followProgress);
});
