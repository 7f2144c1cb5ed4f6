// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {Strings} from "@openzeppelin/contracts/utils/Strings.sol";
import {ReserveRegistry} from "./ReserveRegistry.sol";

/// @title The DPG vault's escape hatch: forced withdrawals, the freeze and the claims
/// @notice What lets a user get their funds out of the Vault when the exchange stops serving them
/// (docs/escape-hatch.md).
///
/// Forced withdrawal: the exit address an account registered with the exchange, which its
/// proof-of-reserves leaf (version 2) commits, proves the leaf against the newest root the
/// registry holds for the asset and asks for the account's funds (`requestForcedWithdrawal`). One
/// request may be open per (account, token): that caps what anyone can make the exchange answer.
/// The exchange serves the request within `forcedGrace` seconds either by an ordinary signed
/// withdrawal of that account and token to the exit address (paid at once: no time-lock, no daily
/// limit) or by a signed "the balance is zero" (`answerForcedZero`, 3 of the 5 signers).
///
/// Freeze (anyone, final): when a request is left unserved past its grace (`freezeUnserved`), or
/// when the registry has published nothing for `silencePeriod` seconds (`freezeSilent`). The vault
/// then remembers the registry's latest epoch and stops deposits and ordinary withdrawals.
///
/// Claim (frozen only, once per account and asset, by the exit address): the leaf of the frozen
/// epoch proves the account's balance at that snapshot; the vault adds what the account deposited
/// since and subtracts what it was paid since, both read from its own cumulative counters
/// (`depositedOf`, `paidOf`) against the leaf's `deposited` and `withdrawn`:
///   amount = balance + (depositedOf - deposited) - (paidOf - withdrawn), floored at 0,
/// capped at what the vault holds of the token; claims are paid in the order they come.
///
/// The registry: `ReserveRegistry`'s constructor takes the vault, so the vault learns its registry
/// once, after deployment, from its deployer (`setRegistry`, which checks that the registry names
/// this vault). Until then no request can be made and no freeze happens.
///
/// Governance: the deployer also names, once, the vault's `governance` (the DPG timelock,
/// docs/governance.md; `setGovernance`). It alone changes the escape periods (`setEscapePeriods`),
/// within 1 s .. 90 days, never after the freeze and never while a forced request is open, so a
/// shorter grace never shortens a request already made.
abstract contract EscapeHatch is EIP712, ReentrancyGuardTransient {
    // ---------------------------------------------------------------- constants

    bytes32 public constant FORCED_ZERO_TYPEHASH = keccak256("ForcedZero(bytes32 requestId,uint256 deadline)");
    /// `Frozen` reasons
    uint8 public constant FROZEN_UNSERVED = 1;
    uint8 public constant FROZEN_SILENT = 2;
    /// The longest grace and silence period a vault accepts.
    uint256 public constant MAX_ESCAPE_PERIOD = 90 days;
    bytes internal constant ACCOUNT_KEY_PREFIX = "DPG-POR-ACCOUNT-v1:";

    // ---------------------------------------------------------------- types

    /// An account's proof-of-reserves leaf (version 2) with its path in the tree of `assetId`.
    struct LeafV2 {
        uint64 account;
        bytes32 assetId;
        uint256 balance;
        bytes32 salt;
        address exitAddress;
        uint256 deposited;
        uint256 withdrawn;
        uint256 index;
        ReserveRegistry.Sibling[] siblings;
    }

    /// A forced withdrawal request, in 2 storage slots.
    struct ForcedRequest {
        address token;
        uint64 account;
        address exitAddress;
        uint64 requestedAt; // 0: no such request
        bool served;
    }

    // ---------------------------------------------------------------- state

    /// Seconds the exchange has to serve a forced withdrawal request before anyone may freeze.
    uint256 public forcedGrace;
    /// Seconds without a publication in the registry after which anyone may freeze.
    uint256 public silencePeriod;
    /// Who may set the registry and the governance, once each: the deployer.
    address private immutable _registrar;
    /// The DPG timelock, which changes the vault's parameters (`setGovernance`); 0 until named.
    address public governance;
    /// 1 + how many forced withdrawal requests are open (`openRequests`): never 0, so that a request
    /// updates a non-zero slot (about 17,000 gas less than writing a zero slot).
    uint256 private _openRequestsPlusOne = 1;

    ReserveRegistry public registry;
    /// The registry's latest epoch when the vault froze: the roots claims prove against.
    uint64 public frozenEpoch;
    /// 0 while not frozen, else FROZEN_UNSERVED or FROZEN_SILENT.
    uint8 public frozenReason;
    /// When the registry was set: silence is counted from here when nothing was published since.
    uint64 public registrySetAt;

    /// What each account deposited of each token, cumulative.
    mapping(uint64 account => mapping(address token => uint256)) public depositedOf;
    /// What the vault paid for each account of each token (withdrawals and claims), cumulative.
    mapping(uint64 account => mapping(address token => uint256)) public paidOf;
    /// The open forced withdrawal request of (account, token); 0 when none is open.
    mapping(uint64 account => mapping(address token => bytes32)) public openRequestOf;
    mapping(uint64 account => mapping(bytes32 assetId => bool)) public claimed;
    mapping(bytes32 requestId => ForcedRequest) private _forced;

    // ---------------------------------------------------------------- events

    event RegistrySet(address registry);
    event GovernanceSet(address governance);
    event EscapePeriodsChanged(uint256 forcedGrace, uint256 silencePeriod);
    event ForcedWithdrawalRequested(
        bytes32 indexed requestId, uint64 indexed account, address indexed token, address exitAddress, uint64 requestedAt
    );
    /// `withdrawalId`: the withdrawal that paid the exit address; 0 for a signed zero answer.
    event ForcedWithdrawalServed(bytes32 indexed requestId, bytes32 withdrawalId);
    event Frozen(uint8 reason, uint64 epoch);
    event Claimed(uint64 indexed account, bytes32 indexed assetId, address to, uint256 amount);

    // ---------------------------------------------------------------- errors

    error VaultFrozen();
    error NotFrozen();
    error GraceNotOver(uint256 at);
    error NotSilent(uint256 at);
    error AlreadyClaimed();
    error NotExitAddress();
    error InvalidProof();
    error RequestOpen();
    error UnknownRequest();
    error AlreadyServed();
    error RegistryNotSet();
    error RegistryAlreadySet();
    error WrongRegistry(address registry);
    error NotRegistrar(address caller);
    error ZeroAddress();
    error GovernanceAlreadySet();
    error NotGovernance(address caller);
    error InvalidEscapePeriod(uint256 period);
    error Expired(uint256 deadline);

    // ---------------------------------------------------------------- construction

    constructor(uint256 forcedGrace_, uint256 silencePeriod_) {
        _setEscapePeriods(forcedGrace_, silencePeriod_);
        _registrar = msg.sender;
    }

    modifier whenNotFrozen() {
        if (frozenReason != 0) revert VaultFrozen();
        _;
    }

    /// The deployer names the vault's proof-of-reserves registry, once; it must name this vault.
    function setRegistry(address registry_) external {
        if (msg.sender != _registrar) revert NotRegistrar(msg.sender);
        if (address(registry) != address(0)) revert RegistryAlreadySet();
        if (registry_ == address(0) || ReserveRegistry(registry_).vault() != address(this)) {
            revert WrongRegistry(registry_);
        }
        registry = ReserveRegistry(registry_);
        registrySetAt = uint64(block.timestamp);
        emit RegistrySet(registry_);
    }

    /// The deployer names the vault's governance (the DPG timelock), once.
    function setGovernance(address governance_) external {
        if (msg.sender != _registrar) revert NotRegistrar(msg.sender);
        if (governance != address(0)) revert GovernanceAlreadySet();
        if (governance_ == address(0)) revert ZeroAddress();
        governance = governance_;
        emit GovernanceSet(governance_);
    }

    modifier onlyGovernance() {
        if (msg.sender != governance) revert NotGovernance(msg.sender);
        _;
    }

    /// Governance sets the forced-withdrawal grace and the registry silence (each 1 s .. 90 days);
    /// refused after the freeze and while a forced request is open (`RequestOpen`).
    function setEscapePeriods(uint256 grace, uint256 silence) external onlyGovernance whenNotFrozen {
        if (_openRequestsPlusOne != 1) revert RequestOpen();
        _setEscapePeriods(grace, silence);
    }

    // ---------------------------------------------------------------- forced withdrawals

    /// The exit address of `leaf` asks for the account's funds of the leaf's asset; the leaf must
    /// hold against the registry's latest epoch. At most one request per (account, token) is open.
    /// @return requestId keccak256(abi.encode(account, token, requestedAt, exitAddress))
    function requestForcedWithdrawal(LeafV2 calldata leaf)
        external
        nonReentrant
        whenNotFrozen
        returns (bytes32 requestId)
    {
        ReserveRegistry reg = _registry();
        _checkExitAddress(leaf);
        address token = _provenToken(reg, reg.latestEpoch(), leaf);
        if (openRequestOf[leaf.account][token] != bytes32(0)) revert RequestOpen();
        uint64 requestedAt = uint64(block.timestamp);
        requestId = keccak256(abi.encode(leaf.account, token, requestedAt, leaf.exitAddress));
        // the same request again in the same block, after the first was served at once
        if (_forced[requestId].requestedAt != 0) revert RequestOpen();
        _forced[requestId] = ForcedRequest({
            token: token, account: leaf.account, exitAddress: leaf.exitAddress, requestedAt: requestedAt, served: false
        });
        openRequestOf[leaf.account][token] = requestId;
        ++_openRequestsPlusOne;
        emit ForcedWithdrawalRequested(requestId, leaf.account, token, leaf.exitAddress, requestedAt);
    }

    /// 3 of the 5 signers answer a request "the account's balance is zero", which serves it.
    function answerForcedZero(bytes32 requestId, uint256 deadline, bytes[] calldata signatures)
        external
        nonReentrant
        whenNotFrozen
    {
        if (block.timestamp > deadline) revert Expired(deadline);
        ForcedRequest storage r = _openRequest(requestId);
        _checkSignatures(keccak256(abi.encode(FORCED_ZERO_TYPEHASH, requestId, deadline)), signatures);
        _serve(requestId, r, bytes32(0));
    }

    /// The EIP-712 digest the signers sign to answer `requestId` with a zero balance.
    function forcedZeroDigest(bytes32 requestId, uint256 deadline) external view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(FORCED_ZERO_TYPEHASH, requestId, deadline)));
    }

    /// (account, token, exitAddress, requestedAt, served) of a request; requestedAt 0 when unknown.
    function forcedRequest(bytes32 requestId)
        external
        view
        returns (uint64 account, address token, address exitAddress, uint64 requestedAt, bool served)
    {
        ForcedRequest storage r = _forced[requestId];
        return (r.account, r.token, r.exitAddress, r.requestedAt, r.served);
    }

    // ---------------------------------------------------------------- freeze

    /// Anyone freezes the vault once a request has waited `forcedGrace` seconds unserved.
    function freezeUnserved(bytes32 requestId) external whenNotFrozen {
        ForcedRequest storage r = _openRequest(requestId);
        uint256 at = r.requestedAt + forcedGrace;
        if (block.timestamp < at) revert GraceNotOver(at);
        _freeze(FROZEN_UNSERVED);
    }

    /// Anyone freezes the vault once the registry has published nothing for `silencePeriod`
    /// seconds (counted from when the registry was set if it has published nothing since).
    function freezeSilent() external whenNotFrozen {
        ReserveRegistry reg = _registry();
        uint256 last = reg.lastPublishedAt();
        if (last < registrySetAt) last = registrySetAt;
        uint256 at = last + silencePeriod;
        if (block.timestamp < at) revert NotSilent(at);
        _freeze(FROZEN_SILENT);
    }

    /// How many forced withdrawal requests are open (made, and neither served nor frozen over).
    function openRequests() external view returns (uint256) {
        return _openRequestsPlusOne - 1;
    }

    function frozen() public view returns (bool) {
        return frozenReason != 0;
    }

    // ---------------------------------------------------------------- claims

    /// The exit address of `leaf` takes the account's funds of the leaf's asset out of a frozen
    /// vault: the leaf must hold against the frozen epoch's root; once per (account, asset).
    /// @return amount what was paid (see `claimable`)
    function claim(LeafV2 calldata leaf) external nonReentrant returns (uint256 amount) {
        if (frozenReason == 0) revert NotFrozen();
        _checkExitAddress(leaf);
        if (claimed[leaf.account][leaf.assetId]) revert AlreadyClaimed();
        address token = _provenToken(registry, frozenEpoch, leaf);
        claimed[leaf.account][leaf.assetId] = true;
        amount = claimable(leaf.account, token, leaf.balance, leaf.deposited, leaf.withdrawn);
        paidOf[leaf.account][token] += amount;
        emit Claimed(leaf.account, leaf.assetId, msg.sender, amount);
        if (amount != 0) _transferOut(token, msg.sender, amount);
    }

    /// What a claim of a leaf with these fields would pay now: balance + (depositedOf - deposited)
    /// - (paidOf - withdrawn), floored at 0, capped at the vault's holdings of `token`.
    function claimable(uint64 account, address token, uint256 balance, uint256 deposited, uint256 withdrawn)
        public
        view
        returns (uint256 amount)
    {
        uint256 plus = balance + depositedOf[account][token] + withdrawn;
        uint256 minus = deposited + paidOf[account][token];
        if (plus <= minus) return 0;
        amount = plus - minus;
        uint256 held = holdings(token);
        if (amount > held) amount = held;
    }

    /// The proof-of-reserves account key of an exchange account:
    /// keccak256("DPG-POR-ACCOUNT-v1:" + the account number in decimal).
    function accountKey(uint64 account) public pure returns (bytes32) {
        return keccak256(bytes.concat(ACCOUNT_KEY_PREFIX, bytes(Strings.toString(account))));
    }

    // ---------------------------------------------------------------- for the vault

    /// What the vault holds of `token` (address(0): ETH).
    function holdings(address token) public view virtual returns (uint256);

    /// Reverts unless `signatures` are valid signatures of 3 to 5 current signers over the typed
    /// data `structHash`.
    function _checkSignatures(bytes32 structHash, bytes[] calldata signatures)
        internal
        view
        virtual
        returns (uint256 approvers);

    /// Sends `amount` of `token` to `to`.
    function _transferOut(address token, address to, uint256 amount) internal virtual;

    function _countDeposit(uint64 account, address token, uint256 amount) internal {
        depositedOf[account][token] += amount;
    }

    function _countPayment(uint64 account, address token, uint256 amount) internal {
        paidOf[account][token] += amount;
    }

    /// If a request of (account, token) is open and `to` is its exit address, serves it with the
    /// withdrawal `withdrawalId` (paid at once by the vault) and returns its id; else 0.
    function _serveByWithdrawal(uint64 account, address token, address to, bytes32 withdrawalId)
        internal
        returns (bytes32 requestId)
    {
        requestId = openRequestOf[account][token];
        if (requestId == bytes32(0)) return requestId;
        ForcedRequest storage r = _forced[requestId];
        if (r.exitAddress != to) return bytes32(0);
        _serve(requestId, r, withdrawalId);
    }

    // ---------------------------------------------------------------- internals

    function _registry() private view returns (ReserveRegistry reg) {
        reg = registry;
        if (address(reg) == address(0)) revert RegistryNotSet();
    }

    function _checkExitAddress(LeafV2 calldata leaf) private view {
        if (leaf.exitAddress == address(0) || msg.sender != leaf.exitAddress) revert NotExitAddress();
    }

    /// The token of `leaf`'s asset; reverts unless the leaf holds against the root of (epoch, asset).
    function _provenToken(ReserveRegistry reg, uint64 epoch, LeafV2 calldata leaf)
        private
        view
        returns (address token)
    {
        bool listed;
        (token, listed) = reg.assets(leaf.assetId);
        bytes32 h = reg.leafHash(
            epoch,
            leaf.assetId,
            accountKey(leaf.account),
            leaf.balance,
            leaf.salt,
            leaf.exitAddress,
            leaf.deposited,
            leaf.withdrawn
        );
        if (!listed || !reg.verifyPath(epoch, leaf.assetId, h, leaf.balance, leaf.index, leaf.siblings)) {
            revert InvalidProof();
        }
    }

    function _openRequest(bytes32 requestId) private view returns (ForcedRequest storage r) {
        r = _forced[requestId];
        if (r.requestedAt == 0) revert UnknownRequest();
        if (r.served) revert AlreadyServed();
    }

    function _serve(bytes32 requestId, ForcedRequest storage r, bytes32 withdrawalId) private {
        r.served = true;
        delete openRequestOf[r.account][r.token];
        --_openRequestsPlusOne;
        emit ForcedWithdrawalServed(requestId, withdrawalId);
    }

    function _setEscapePeriods(uint256 grace, uint256 silence) private {
        if (grace == 0 || grace > MAX_ESCAPE_PERIOD) revert InvalidEscapePeriod(grace);
        if (silence == 0 || silence > MAX_ESCAPE_PERIOD) revert InvalidEscapePeriod(silence);
        forcedGrace = grace;
        silencePeriod = silence;
        emit EscapePeriodsChanged(grace, silence);
    }

    function _freeze(uint8 reason) private {
        uint64 epoch = registry.latestEpoch();
        frozenReason = reason;
        frozenEpoch = epoch;
        emit Frozen(reason, epoch);
    }
}
