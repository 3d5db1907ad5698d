// Copy buttons for the team page's invite links; without JavaScript the links stay selectable.
for (const button of document.querySelectorAll("[data-copy-invite]")) {
  const input = button.parentElement.querySelector("[data-invite-link]");
  button.hidden = false;
  button.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(input.value);
    } catch {
      // Clipboard access can be refused (an insecure origin); select the text to copy by hand.
      input.select();
      return;
    }
    const label = button.textContent;
    button.textContent = button.dataset.copiedLabel;
    setTimeout(() => {
      button.textContent = label;
    }, 1500);
  });
}
