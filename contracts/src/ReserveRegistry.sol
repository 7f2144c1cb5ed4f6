// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

/// @title DPG proof-of-reserves registry
/// @notice Per (epoch, asset): the root and total of the Merkle sum tree of every user's balance
/// (docs/proof-of-reserves.md, specification v2), its depth, the block of this chain at which
/// the reserves were taken, and the IPFS CID of the whole tree, so that anyone can audit it.
///
/// Only the operator (the owner) publishes, once per (epoch, asset), and a publication reverts
/// when the liabilities (the tree's total) exceed the reserves: what the vault holds of the
/// asset on this chain now (its ETH balance for the native asset, else the token's
/// `balanceOf(vault)`) plus what the operator declares for the other chains. The declarations are
/// emitted, one event each, so that anyone can check them against those chains.
///
/// `verifyProof` recomputes a user's leaf (chainId = this chain, registry = this contract) and its
/// path to the published root and total: an on-chain verifier of the same specification. The
/// leaf is of version 2: besides the balance it commits the account's exit address and its
/// cumulative deposits and withdrawals through the vault, which the vault's escape hatch reads
/// (docs/escape-hatch.md). `latestEpoch` and `lastPublishedAt` tell the vault which roots are the
/// newest and whether the operator has gone silent.
contract ReserveRegistry is Ownable {
    // ---------------------------------------------------------------- specification v2

    bytes32 public constant LEAF_TAG_V2 = keccak256("DPG-POR-LEAF-v2");
    bytes32 public constant NODE_TAG = keccak256("DPG-POR-NODE-v1");
    bytes32 public constant PAD_TAG = keccak256("DPG-POR-PAD-v1");
    uint256 public constant MAX_VALUE = 1 << 128; // every leaf value is below
    uint256 public constant MAX_DEPTH = 64;

    // ---------------------------------------------------------------- types

    /// Holdings of the asset the operator declares on another chain, at its snapshot block.
    struct Declaration {
        uint256 chainId;
        uint256 amount;
    }

    /// A sibling on a proof's path, leaf level first.
    struct Sibling {
        bytes32 hash;
        uint256 value;
    }

    struct Publication {
        bytes32 root;
        uint256 total;
        uint8 depth; // 0 = not published
        uint64 snapshotBlock;
        bytes32 snapshotBlockHash;
        uint64 publishedAt;
        uint256 holdings; // this chain's vault holdings when published
        uint256 declared; // the sum of the declarations
        string cid;
    }

    /// The insurance fund's balance of an asset at an epoch's snapshot (the futures' loss absorber):
    /// not a user's liability, published beside the root so anyone can follow it.
    struct InsuranceFund {
        uint256 balance;
        bool published;
    }

    struct Asset {
        address token; // address(0): the chain's native coin
        bool listed;
    }

    // ---------------------------------------------------------------- state

    address public immutable vault;
    mapping(bytes32 assetId => Asset) public assets;
    mapping(uint64 epoch => mapping(bytes32 assetId => Publication)) private _publications;
    mapping(uint64 epoch => mapping(bytes32 assetId => InsuranceFund)) private _insuranceFunds;
    /// The highest epoch published (of any asset); 0 before the first publication.
    uint64 public latestEpoch;
    /// The block timestamp of the last publication (of any asset and epoch); 0 before the first.
    uint64 public lastPublishedAt;

    // ---------------------------------------------------------------- events and errors

    event AssetListed(bytes32 indexed assetId, address token);
    event Published(
        uint64 indexed epoch,
        bytes32 indexed assetId,
        bytes32 root,
        uint256 total,
        uint8 depth,
        uint64 snapshotBlock,
        bytes32 snapshotBlockHash,
        string cid,
        uint256 holdings,
        uint256 declared
    );
    event InsuranceFundPublished(uint64 indexed epoch, bytes32 indexed assetId, uint256 balance);
    event Declared(uint64 indexed epoch, bytes32 indexed assetId, uint256 indexed chainId, uint256 amount);

    error ZeroAddress();
    error AssetAlreadyListed(bytes32 assetId);
    error AssetNotListed(bytes32 assetId);
    error AlreadyPublished(uint64 epoch, bytes32 assetId);
    error BadDepth(uint8 depth);
    error ZeroRoot();
    error TotalTooLarge(uint256 total);
    error BadSnapshotBlock(uint64 snapshotBlock);
    error SnapshotBlockHashMismatch(uint64 snapshotBlock, bytes32 expected, bytes32 got);
    error BadDeclaration(uint256 chainId);
    error EmptyCid();
    error NotPublished(uint64 epoch, bytes32 assetId);
    error InsuranceFundAlreadyPublished(uint64 epoch, bytes32 assetId);
    error ReservesShort(uint256 total, uint256 holdings, uint256 declared);

    // ---------------------------------------------------------------- setup

    /// @param owner_ the operator, who publishes
    /// @param vault_ this chain's Vault
    /// @param assetIds keccak256 of each asset symbol; `tokens[i]` its token here (address(0): native)
    constructor(address owner_, address vault_, bytes32[] memory assetIds, address[] memory tokens) Ownable(owner_) {
        if (vault_ == address(0)) revert ZeroAddress();
        require(assetIds.length == tokens.length, "assetIds and tokens differ in length");
        vault = vault_;
        for (uint256 i; i < assetIds.length; ++i) {
            _list(assetIds[i], tokens[i]);
        }
    }

    /// List another asset; a listed asset's token never changes.
    function listAsset(bytes32 assetId, address token) external onlyOwner {
        _list(assetId, token);
    }

    // ---------------------------------------------------------------- publishing

    /// Publish one asset's tree of `epoch`. Reverts unless total <= this chain's vault holdings
    /// of the asset + the declared holdings on other chains (each chain once, never this one).
    /// `snapshotBlock` is a past block of this chain; when it is one of the last 256, its hash
    /// must be `snapshotBlockHash`.
    function publish(
        uint64 epoch,
        bytes32 assetId,
        bytes32 root,
        uint256 total,
        uint8 depth,
        uint64 snapshotBlock,
        bytes32 snapshotBlockHash,
        string calldata cid,
        Declaration[] calldata declarations
    ) external onlyOwner {
        if (!assets[assetId].listed) revert AssetNotListed(assetId);
        if (_publications[epoch][assetId].depth != 0) revert AlreadyPublished(epoch, assetId);
        if (depth == 0 || depth > MAX_DEPTH) revert BadDepth(depth);
        if (root == bytes32(0)) revert ZeroRoot();
        if (bytes(cid).length == 0) revert EmptyCid();
        // 2^depth leaves, each below 2^128
        if (total >= MAX_VALUE << depth) revert TotalTooLarge(total);
        if (snapshotBlock >= block.number) revert BadSnapshotBlock(snapshotBlock);
        if (blockhash(snapshotBlock) != bytes32(0) && blockhash(snapshotBlock) != snapshotBlockHash) {
            revert SnapshotBlockHashMismatch(snapshotBlock, blockhash(snapshotBlock), snapshotBlockHash);
        }
        Publication storage p = _publications[epoch][assetId];
        p.declared = _declare(epoch, assetId, declarations);
        p.holdings = _holdings(assetId);
        if (total > p.holdings + p.declared) revert ReservesShort(total, p.holdings, p.declared);
        p.root = root;
        p.total = total;
        p.depth = depth;
        p.snapshotBlock = snapshotBlock;
        p.snapshotBlockHash = snapshotBlockHash;
        p.publishedAt = uint64(block.timestamp);
        p.cid = cid;
        if (epoch > latestEpoch) latestEpoch = epoch;
        lastPublishedAt = uint64(block.timestamp);
        _emitPublished(epoch, assetId);
    }

    /// The insurance fund's balance of ``assetId`` at ``epoch``'s snapshot, beside that epoch's root
    /// (which must be published already); once per (epoch, assetId).
    function publishInsuranceFund(uint64 epoch, bytes32 assetId, uint256 balance) external onlyOwner {
        if (_publications[epoch][assetId].depth == 0) revert NotPublished(epoch, assetId);
        InsuranceFund storage f = _insuranceFunds[epoch][assetId];
        if (f.published) revert InsuranceFundAlreadyPublished(epoch, assetId);
        f.balance = balance;
        f.published = true;
        emit InsuranceFundPublished(epoch, assetId, balance);
    }

    // ---------------------------------------------------------------- reading

    function insuranceFundOf(uint64 epoch, bytes32 assetId) external view returns (uint256 balance, bool published) {
        InsuranceFund storage f = _insuranceFunds[epoch][assetId];
        return (f.balance, f.published);
    }

    function publication(uint64 epoch, bytes32 assetId) external view returns (Publication memory) {
        return _publications[epoch][assetId];
    }

    /// (root, total, depth) of a publication; depth 0 when there is none.
    function rootOf(uint64 epoch, bytes32 assetId) external view returns (bytes32 root, uint256 total, uint8 depth) {
        Publication storage p = _publications[epoch][assetId];
        return (p.root, p.total, p.depth);
    }

    /// Reserves of the asset on this chain now: the vault's ETH balance or token balance.
    function holdings(bytes32 assetId) external view returns (uint256) {
        if (!assets[assetId].listed) revert AssetNotListed(assetId);
        return _holdings(assetId);
    }

    // ---------------------------------------------------------------- the specification

    /// The leaf hash (version 2) of an account's balance in this registry's tree of (epoch, assetId):
    /// keccak256(keccak256(abi.encode(LEAF_TAG_V2, chainid, this, epoch, assetId, accountKey,
    /// balance, salt, exitAddress, deposited, withdrawn))). Every field is one static word, so the
    /// encoding is the concatenation of two shorter encodings.
    function leafHash(
        uint64 epoch,
        bytes32 assetId,
        bytes32 accountKey,
        uint256 balance,
        bytes32 salt,
        address exitAddress,
        uint256 deposited,
        uint256 withdrawn
    ) public view returns (bytes32) {
        bytes memory head = abi.encode(LEAF_TAG_V2, block.chainid, address(this), epoch, assetId, accountKey);
        bytes memory tail = abi.encode(balance, salt, exitAddress, deposited, withdrawn);
        return keccak256(abi.encode(keccak256(bytes.concat(head, tail))));
    }

    function nodeHash(bytes32 leftHash, uint256 leftValue, bytes32 rightHash, uint256 rightValue)
        public
        pure
        returns (bytes32)
    {
        return keccak256(abi.encode(NODE_TAG, leftHash, leftValue, rightHash, rightValue));
    }

    /// True when the leaf of `accountKey` (version 2: its balance, salt, exit address, deposited
    /// and withdrawn) at leaf `index` and the siblings (leaf level first) lead to the root and
    /// total published for (epoch, assetId). False for anything else (see `verifyPath`).
    function verifyProof(
        uint64 epoch,
        bytes32 assetId,
        bytes32 accountKey,
        uint256 balance,
        bytes32 salt,
        address exitAddress,
        uint256 deposited,
        uint256 withdrawn,
        uint256 index,
        Sibling[] calldata siblings
    ) external view returns (bool) {
        bytes32 leaf = leafHash(epoch, assetId, accountKey, balance, salt, exitAddress, deposited, withdrawn);
        return verifyPath(epoch, assetId, leaf, balance, index, siblings);
    }

    /// True when the leaf `leaf` of value `value` at leaf `index` and the siblings (leaf level
    /// first) lead to the root and total published for (epoch, assetId). False for anything
    /// else: no publication, a path of another length than the published depth, an index outside
    /// the tree, a value of 2^128 or more, or a sibling value at level l of 2^(128+l) or more (so
    /// no sum can overflow).
    function verifyPath(
        uint64 epoch,
        bytes32 assetId,
        bytes32 leaf,
        uint256 value,
        uint256 index,
        Sibling[] calldata siblings
    ) public view returns (bool) {
        Publication storage p = _publications[epoch][assetId];
        uint256 depth = p.depth;
        if (depth == 0 || siblings.length != depth || index >> depth != 0 || value >= MAX_VALUE) return false;
        bytes32 h = leaf;
        uint256 v = value;
        for (uint256 level; level < depth; ++level) {
            Sibling calldata s = siblings[level];
            if (s.value >= MAX_VALUE << level) return false;
            if ((index >> level) & 1 == 1) {
                h = nodeHash(s.hash, s.value, h, v);
            } else {
                h = nodeHash(h, v, s.hash, s.value);
            }
            v += s.value;
        }
        return h == p.root && v == p.total;
    }

    // ---------------------------------------------------------------- internals

    function _holdings(bytes32 assetId) private view returns (uint256) {
        address token = assets[assetId].token;
        return token == address(0) ? vault.balance : IERC20(token).balanceOf(vault);
    }

    /// The sum of the declarations, each for another chain than this one, each chain once.
    function _declare(uint64 epoch, bytes32 assetId, Declaration[] calldata declarations)
        private
        returns (uint256 declared)
    {
        for (uint256 i; i < declarations.length; ++i) {
            uint256 chainId = declarations[i].chainId;
            if (chainId == block.chainid || chainId == 0) revert BadDeclaration(chainId);
            for (uint256 j; j < i; ++j) {
                if (declarations[j].chainId == chainId) revert BadDeclaration(chainId);
            }
            declared += declarations[i].amount;
            emit Declared(epoch, assetId, chainId, declarations[i].amount);
        }
    }

    function _emitPublished(uint64 epoch, bytes32 assetId) private {
        Publication storage p = _publications[epoch][assetId];
        emit Published(
            epoch, assetId, p.root, p.total, p.depth, p.snapshotBlock, p.snapshotBlockHash, p.cid, p.holdings, p.declared
        );
    }

    function _list(bytes32 assetId, address token) private {
        if (assets[assetId].listed) revert AssetAlreadyListed(assetId);
        assets[assetId] = Asset(token, true);
        emit AssetListed(assetId, token);
    }
}
