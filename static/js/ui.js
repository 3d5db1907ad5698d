// Small page behaviours shared by every template: no inline handlers.

for (const select of document.querySelectorAll("select[data-autosubmit]")) {
  select.addEventListener("change", () => select.form.requestSubmit());
}

const sidebar = document.getElementById("sidebar");
const openButton = document.querySelector("[data-sidebar-open]");
const backdrop = document.querySelector(".sidebar-backdrop");

function setSidebar(open) {
  if (!sidebar) return;
  sidebar.classList.toggle("open", open);
  if (backdrop) backdrop.hidden = !open;
  if (openButton) openButton.setAttribute("aria-expanded", String(open));
  if (open) sidebar.querySelector("a, button")?.focus();
}

openButton?.addEventListener("click", () => setSidebar(true));
for (const closer of document.querySelectorAll("[data-sidebar-close]")) {
  closer.addEventListener("click", () => setSidebar(false));
}
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && sidebar?.classList.contains("open")) {
    setSidebar(false);
    openButton?.focus();
  }
});
