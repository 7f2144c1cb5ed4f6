"""``dpg por …``: proof of reserves by hand: mark an epoch, build trees and proofs, deploy the
registry, publish an epoch, verify a proof and audit a published tree (docs/proof-of-reserves.md)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from dpg.cli.context import fail, target, unreachable
from dpg.config import Settings

por_app = typer.Typer(help="Proof of reserves: Merkle sum trees and proofs (docs/proof-of-reserves.md)",
                      no_args_is_help=True)


@por_app.command("snapshot")
def por_snapshot(
    url: Annotated[str | None, typer.Option(help="The running exchange (default: the one registered on this machine, "
                                                 "else http://DPG_HOST:DPG_PORT)")] = None,
) -> None:
    """Mark a proof-of-reserves epoch on the running exchange now; trading goes on."""
    import urllib.error
    import urllib.request

    from dpg.api.server import admin_token

    exchange = target()
    settings = exchange.settings
    base = url or exchange.api
    if not base.startswith(("http://", "https://")):
        raise fail("--url must be an http(s) URL")
    req = urllib.request.Request(f"{base}/api/v1/admin/por/epochs", method="POST", data=b"",  # noqa: S310
                                 headers={"X-DPG-Admin-Token": admin_token(settings)})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 (an operator-given http URL)
            typer.echo(resp.read().decode())
    except urllib.error.HTTPError as e:
        raise fail(f"the exchange refused: {e.read().decode()}", 1) from None
    except OSError as e:
        raise fail(unreachable(base, e), 1) from None


@por_app.command("build-tree")
def por_build_tree(
    balances: Annotated[Path, typer.Argument(help="CSV with header account,balance (integers of base units) and, "
                                                  "optionally, exitAddress,deposited,withdrawn")],
    epoch: Annotated[int, typer.Option(help="Epoch number (uint64)")],
    asset: Annotated[str, typer.Option(help="Asset symbol, e.g. USDT")],
    chain_id: Annotated[int, typer.Option("--chain-id", help="Chain id of the registry")],
    registry: Annotated[str, typer.Option(help="Registry contract address, 0x…")],
    secret: Annotated[str, typer.Option(help="The exchange's proof-of-reserves secret, hex")],
    out: Annotated[Path, typer.Option(help="Where to write the tree (JSON)")],
) -> None:
    """Build one asset's Merkle sum tree; prints root, total, depth and the number of leaves."""
    from dpg.por import tree as por

    if not balances.is_file():
        raise fail(f"{balances}: no such file")
    try:
        key = bytes.fromhex(secret.removeprefix("0x"))
    except ValueError:
        raise fail("--secret must be hex") from None
    if len(key) < 16:
        raise fail("--secret must be at least 16 bytes")
    rows: list[por.Row] = []
    with balances.open(newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or not {"account", "balance"} <= set(reader.fieldnames):
            raise fail(f"{balances}: header must be account,balance")
        for n, row in enumerate(reader, start=2):
            raw = (row.get("balance") or "").strip()
            if not raw.lstrip("-").isdigit():
                raise fail(f"{balances} line {n}: balance must be an integer of base units, got {raw!r}")
            exit_address = (row.get("exitAddress") or "").strip() or por.ZERO_ADDRESS
            counters = [(row.get(c) or "0").strip() for c in ("deposited", "withdrawn")]
            if not all(c.isdigit() for c in counters):
                raise fail(f"{balances} line {n}: deposited and withdrawn must be integers of base units")
            rows.append(((row.get("account") or "").strip(), int(raw), exit_address, int(counters[0]),
                         int(counters[1])))
    try:
        t = por.build(por.Params(chain_id, registry, epoch, asset), rows, key)
    except por.ProofError as e:
        raise fail(str(e)) from None
    out.write_text(json.dumps(por.tree_json(t)))
    typer.echo(json.dumps({"root": "0x" + t.root.hex(), "total": str(t.total), "depth": t.depth,
                           "leaves": len(t.accounts)}))


@por_app.command("prove")
def por_prove(
    tree_file: Annotated[Path, typer.Argument(help="A tree written by build-tree")],
    account: Annotated[str, typer.Option(help="Account id")],
    out: Annotated[Path, typer.Option(help="Where to write the proof (JSON)")],
) -> None:
    """Write one account's proof."""
    from dpg.por import tree as por

    try:
        t = por.load_tree(json.loads(tree_file.read_text()))
        out.write_text(json.dumps(por.proof(t, account), indent=2) + "\n")
    except FileNotFoundError:
        raise fail(f"{tree_file}: no such file") from None
    except (por.ProofError, KeyError, ValueError) as e:
        raise fail(str(e)) from None
    typer.echo(json.dumps({"account": account, "out": str(out)}))


def _por_chains(chains_file: Path | None) -> list[Any]:
    """The chains of ``--chains`` (a DPG_CHAINS-format file), else of DPG_CHAINS; the first holds the registry."""
    import os

    from dpg.chain.config import ChainConfigError, load_chains
    from dpg.por import registry as reg

    env = dict(os.environ)
    if chains_file is not None:
        env["DPG_CHAINS"] = str(chains_file)
    try:
        configs = load_chains(env)
        return [reg.Chain.from_config(c) for c in configs]
    except (ChainConfigError, reg.PublishError) as e:
        raise fail(f"{e} (publishing needs chains with an rpc_url and a vault: --chains FILE or DPG_CHAINS)") from None


def _por_secret(secret: str | None) -> bytes:
    """--secret, else the exchange's (DPG_POR_SECRET, else DPG_DATA_DIR/por.secret, as dpg up uses)."""
    raw = secret
    if not raw:
        return Settings.from_env().por_key()
    try:
        key = bytes.fromhex(raw.removeprefix("0x"))
    except ValueError:
        raise fail("the proof-of-reserves secret must be hex") from None
    if len(key) < 16:
        raise fail("the proof-of-reserves secret must be at least 16 bytes")
    return key


def _por_rpc(rpc_url: str | None, settings: Settings) -> str | None:
    import os

    from dpg.por import registry as reg

    record = reg.read_record(settings.data_dir) or {}
    return rpc_url or os.environ.get("DPG_POR_RPC") or record.get("rpcUrl")


@por_app.command("deploy-registry")
def por_deploy_registry(
    chains_file: Annotated[Path | None, typer.Option("--chains", help="Chains file (default DPG_CHAINS)")] = None,
    sender: Annotated[str | None, typer.Option("--from", help="Operator account the node holds (default its first)")]
    = None,
) -> None:
    """Deploy a ReserveRegistry on the first configured chain, owned by the operator; records it in the data dir."""
    from dpg.por import registry as reg

    settings = Settings.from_env()
    home = _por_chains(chains_file)[0]
    owner = sender or home.rpc.accounts()[0]
    address = reg.deploy_registry(home.rpc, owner, home.vault, home.tokens)
    reg.write_record(settings.data_dir, home.chain_id, address, home.rpc.url)
    typer.echo(json.dumps({"registry": address, "chainId": home.chain_id, "owner": owner}))


@por_app.command("publish")
def por_publish(
    epoch: Annotated[int | None, typer.Option(help="The epoch (default: the latest recorded)")] = None,
    chains_file: Annotated[Path | None, typer.Option("--chains", help="Chains file (default DPG_CHAINS)")] = None,
    registry: Annotated[str | None, typer.Option(help="ReserveRegistry address (default: DPG_POR_REGISTRY, "
                                                      "else the one dpg por deploy-registry recorded)")] = None,
    secret: Annotated[str | None, typer.Option(help="The proof-of-reserves secret, hex (default DPG_POR_SECRET, "
                                                    "else DPG_DATA_DIR/por.secret)")]
    = None,
    sender: Annotated[str | None, typer.Option("--from", help="Operator account the node holds (default its first)")]
    = None,
) -> None:
    """Build every asset's tree of an epoch, add it to IPFS, publish its root in the registry, and
    write the reserves report (printed); exit code 1 when anything is short or refused."""
    import psycopg

    from dpg.por import ipfs
    from dpg.por import publish as pub
    from dpg.por import registry as reg
    from dpg.system.target import database_url

    settings = Settings.from_env()
    key = _por_secret(secret)
    chains = _por_chains(chains_file)
    address = registry or settings.por_registry or (reg.read_record(settings.data_dir) or {}).get("registry")
    if not address:
        raise fail("no registry: --registry, DPG_POR_REGISTRY or dpg por deploy-registry")
    with psycopg.connect(database_url(settings)) as conn:
        e = epoch if epoch is not None else pub.latest_epoch(conn)
        if e is None:
            raise fail("no epoch has been recorded yet (dpg por snapshot)")
        try:
            report = pub.publish_epoch(conn, e, key, chains[0], address, chains[1:],
                                       ipfs.Store.from_env(settings.data_dir), sender)
        except (reg.PublishError, ipfs.IpfsError) as err:
            raise fail(str(err), 1) from None
    typer.echo(json.dumps(report))
    if not report["ok"]:
        raise typer.Exit(1)


@por_app.command("verify")
def por_verify(
    proof_file: Annotated[Path, typer.Argument(help="A proof file")],
    root: Annotated[str | None, typer.Option(help="Check against this root, 0x…, instead of the registry's")] = None,
    total: Annotated[str | None, typer.Option(help="Check against this total (base units), with --root")] = None,
    rpc_url: Annotated[str | None, typer.Option("--rpc", help="JSON-RPC URL of the registry's chain (default "
                                                              "DPG_POR_RPC, else the recorded one)")] = None,
) -> None:
    """Check a proof against the root and total the registry on the chain holds (or --root/--total);
    exit code 0 only when it holds."""
    from dpg.chain.rpc import Rpc, RpcError, RpcUnavailable
    from dpg.por import registry as reg
    from dpg.por import tree as por

    if (root is None) != (total is None):
        raise fail("--root and --total go together")
    try:
        doc = json.loads(proof_file.read_text())
    except FileNotFoundError:
        raise fail(f"{proof_file}: no such file") from None
    except ValueError:
        raise fail(f"{proof_file}: not JSON") from None
    source = "options"
    try:
        if root is not None and total is not None:
            want_root, want_total = bytes.fromhex(root.removeprefix("0x")), int(total)
        else:
            url = _por_rpc(rpc_url, Settings.from_env())
            if not url:
                raise fail("reading the registry needs --rpc URL (or DPG_POR_RPC), or pass --root and --total")
            rpc = Rpc(url)
            if not isinstance(doc, dict) or str(rpc.chain_id()) != str(doc.get("chainId")):
                raise por.ProofError(f"the proof is for chain {doc.get('chainId') if isinstance(doc, dict) else '?'},"
                                     f" the node at {url} is chain {rpc.chain_id()}")
            want_root, want_total, depth = reg.published(rpc, str(doc["registry"]), int(doc["epoch"]),
                                                         str(doc["asset"]))
            if depth == 0:
                raise por.ProofError(f"the registry {doc['registry']} has nothing published for epoch {doc['epoch']}"
                                     f" and {doc['asset']}")
            source = f"registry {doc['registry']} on chain {doc['chainId']}"
        got_root, got_total = por.verify(doc, want_root, want_total)
    except (RpcError, RpcUnavailable) as e:
        raise fail(f"reading the registry: {e}", 1) from None
    except (por.ProofError, ValueError, KeyError, TypeError) as e:
        typer.echo(json.dumps({"valid": False, "reason": str(e)}))
        raise typer.Exit(1) from None
    out = {"valid": True, "version": doc["version"], "account": doc["accountId"], "asset": doc["asset"],
           "epoch": doc["epoch"], "balance": doc["balance"], "root": "0x" + got_root.hex(), "total": str(got_total),
           "checkedAgainst": source}
    if doc["version"] >= 2:  # the escape hatch's fields: without an exit address the balance can be proven, not claimed
        out.update(exitAddress=doc["exitAddress"], canEscape=doc["exitAddress"].lower() != por.ZERO_ADDRESS,
                   deposited=doc["deposited"], withdrawn=doc["withdrawn"])
    typer.echo(json.dumps(out))


@por_app.command("audit")
def por_audit(
    cid: Annotated[str, typer.Argument(help="The CID of a published tree (from the registry or the report)")],
    rpc_url: Annotated[str | None, typer.Option("--rpc", help="JSON-RPC URL of the registry's chain (default "
                                                              "DPG_POR_RPC, else the recorded one)")] = None,
) -> None:
    """Check a whole published tree: fetch it (local store, else the Kubo node of DPG_IPFS_API),
    recompute every node, check every value, and compare root, total and depth with the registry."""
    from dpg.chain.rpc import Rpc, RpcError, RpcUnavailable
    from dpg.por import ipfs
    from dpg.por import registry as reg
    from dpg.por import tree as por

    settings = Settings.from_env()
    try:
        doc = json.loads(ipfs.Store.from_env(settings.data_dir).get(cid))
    except (ipfs.IpfsError, ValueError) as e:
        raise fail(str(e), 1) from None
    problems = list(por.audit(doc)) if isinstance(doc, dict) else ["the tree file is not a JSON object"]
    out: dict[str, Any] = {"cid": cid}
    if not problems:
        out.update({"epoch": doc["epoch"], "asset": doc["asset"], "root": doc["root"], "total": doc["total"],
                    "depth": doc["depth"], "leaves": len(doc["leaves"]), "realLeaves": doc.get("leafCount")})
        url = _por_rpc(rpc_url, settings)
        if not url:
            problems.append("no registry to compare with: --rpc URL or DPG_POR_RPC")
        else:
            try:
                rpc = Rpc(url)
                if str(rpc.chain_id()) != str(doc["chainId"]):
                    problems.append(f"the tree is for chain {doc['chainId']}, the node is chain {rpc.chain_id()}")
                else:
                    root, total, depth = reg.published(rpc, doc["registry"], int(doc["epoch"]), doc["asset"])
                    if depth == 0:
                        problems.append("the registry has nothing published for this epoch and asset")
                    elif ("0x" + root.hex(), str(total), depth) != (doc["root"], str(doc["total"]), int(doc["depth"])):
                        problems.append(f"the registry holds root 0x{root.hex()}, total {total}, depth {depth}")
            except (RpcError, RpcUnavailable) as e:
                problems.append(f"reading the registry: {e}")
    out["ok"] = not problems
    out["problems"] = problems
    typer.echo(json.dumps(out))
    if problems:
        raise typer.Exit(1)
