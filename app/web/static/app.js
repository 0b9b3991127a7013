// llm-eval: progressive enhancement only. Every page works without this file, except the live
// progress of a running run (without it the page says to reload).
"use strict";

// Live progress of a running run, from its server-sent events.
function watchProgress(section) {
  const source = new EventSource(section.dataset.events);
  const field = (name) => section.querySelector('[data-field="' + name + '"]');
  const bar = document.getElementById("progress-bar");
  const status = document.getElementById("run-status");
  const show = (view) => {
    field("done").textContent = view.done;
    field("failed").textContent = view.failed;
    field("total").textContent = view.total;
    field("rate").textContent = view.rate == null ? "-" : view.rate.toFixed(1) + "/s";
    field("eta").textContent = view.eta_secs == null ? "-" : view.eta_secs + " s";
    bar.max = Math.max(view.total, 1);
    bar.value = view.done + view.failed;
    bar.textContent = view.percent + "%";
    if (status) { status.textContent = view.status; status.className = "status " + view.status; }
  };
  source.addEventListener("progress", (event) => show(JSON.parse(event.data)));
  source.addEventListener("end", (event) => {
    source.close();
    try { show(JSON.parse(event.data)); } catch (_) { /* a bare end event */ }
    // The results are rendered by the server: load them.
    window.location.reload();
  });
}

// Live template preview: re-render the first records while a template (each prompt variant
// has its own) is typed, into the element its `data-preview` names.
function watchTemplate(form, template) {
  const dataset = form.querySelector("#dataset");
  const preview = document.getElementById(template.dataset.preview);
  if (!preview || !dataset) return;
  const token = form.querySelector('input[name="csrf_token"]').value;
  let timer = null;
  let sequence = 0;
  const render = async () => {
    const mine = ++sequence;
    const response = await fetch("/evals/preview", {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": token },
      body: JSON.stringify({ dataset: dataset.value, template: template.value }),
    });
    if (mine !== sequence) return;
    const body = await response.json();
    preview.replaceChildren();
    if (body.error) {
      const p = document.createElement("p");
      p.className = "field-error";
      p.textContent = body.error;
      preview.append(p);
      return;
    }
    body.records.forEach((record, index) => {
      const details = document.createElement("details");
      details.open = index === 0;
      const summary = document.createElement("summary");
      summary.textContent = "Record on line " + record.line;
      const pre = document.createElement("pre");
      pre.textContent = record.text;
      const hint = document.createElement("p");
      hint.className = "hint";
      hint.textContent = "Sent as " + record.messages.length + " chat message(s):";
      const list = document.createElement("ol");
      record.messages.forEach((message) => {
        const item = document.createElement("li");
        const role = document.createElement("strong");
        role.textContent = message.role;
        const content = document.createElement("span");
        content.className = "mono";
        content.textContent = message.content;
        item.append(role, ": ", content);
        list.append(item);
      });
      details.append(summary, pre, hint, list);
      preview.append(details);
    });
  };
  const schedule = () => { clearTimeout(timer); timer = setTimeout(() => render().catch(() => {}), 300); };
  template.addEventListener("input", schedule);
  dataset.addEventListener("change", schedule);
}

// The task selector: show the metrics and fields of the chosen task type only; a metric of
// another type is unticked, so what is sent is what is shown.
function watchTask(form) {
  const task = form.querySelector("#task");
  const apply = () => {
    form.querySelectorAll("[data-tasks]").forEach((label) => {
      const offered = label.dataset.tasks.split(" ").includes(task.value);
      label.hidden = !offered;
      if (!offered) label.querySelector("input").checked = false;
    });
    const ticked = form.querySelectorAll('[data-tasks] input:checked');
    if (ticked.length === 0) {
      const first = form.querySelector('[data-tasks]:not([hidden]) input');
      if (first) first.checked = true;
    }
    form.querySelectorAll("[data-task-only]").forEach((part) => {
      part.hidden = part.dataset.taskOnly !== task.value;
    });
  };
  task.addEventListener("change", apply);
  apply();
}

// A challenge's leaderboard, live: the server sends the whole board (rows as JSON) on a
// `board` event whenever it changes, as a run's page gets its progress.
function watchBoard(section) {
  const source = new EventSource(section.dataset.board);
  const body = section.querySelector("#leaderboard tbody");
  const cell = (row, text, className) => {
    const td = document.createElement("td");
    if (className) td.className = className;
    td.textContent = text;
    row.appendChild(td);
    return td;
  };
  source.addEventListener("board", (event) => {
    const rows = JSON.parse(event.data);
    body.replaceChildren();
    for (const line of rows) {
      const tr = document.createElement("tr");
      cell(tr, line.rank == null ? "-" : String(line.rank), "num rank");
      cell(tr, line.participant, "participant");
      const run = cell(tr, "", null);
      if (line.link) {
        const a = document.createElement("a");
        a.href = line.link;
        a.textContent = line.run_name;
        run.appendChild(a);
      } else {
        run.textContent = line.run_name;
      }
      const status = document.createElement("span");
      status.className = "status " + line.status;
      status.textContent = line.status;
      run.append(" ", status);
      cell(tr, line.score == null ? "-" : line.score.toFixed(4), "num score");
      cell(tr, line.cost_usd == null ? "-" : "$" + line.cost_usd.toFixed(4), "num");
      cell(tr, line.elapsed_secs == null ? "-" : line.elapsed_secs.toFixed(1) + " s", "num");
      const variant = cell(tr, "", null);
      const label = document.createElement("strong");
      label.textContent = line.variant;
      variant.append(label, " " + line.model);
      if (line.template) {
        const template = document.createElement("div");
        template.className = "cell mono";
        template.textContent = line.template;
        variant.appendChild(template);
      }
      body.appendChild(tr);
    }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  const progress = document.querySelector("[data-events]");
  if (progress) watchProgress(progress);
  const board = document.querySelector("[data-board]");
  if (board) watchBoard(board);
  const form = document.getElementById("eval-form");
  if (form) form.querySelectorAll("textarea[data-preview]").forEach((template) => watchTemplate(form, template));
  if (form && form.querySelector("#task")) watchTask(form);
});
