// Pages still being built (wallet, proof of reserves): a placeholder in the navigation.
import { h } from "../dom.js";

const TEXT = {
  wallet: ["Wallet", "Deposits and withdrawals on chain: the vault address, your account tag and a QR code, "
    + "confirmations, and withdrawals to allow-listed addresses with 2FA. Coming soon."],
  proof: ["Proof of reserves", "Verify that your balance is in the published Merkle sum tree, in your browser, "
    + "against the root read from the chain. Coming soon."],
};

export function mount(root, { what }) {
  const [title, text] = TEXT[what];
  root.append(h("section", { class: "panel narrow", "data-testid": `${what}-soon` }, h("h1", {}, title), h("p", {}, text)));
}
