// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {EscapeHatch} from "./EscapeHatch.sol";

// -------------------------------------------------------------------- rolling window

/// What was paid in the current hour and the 24 whole hours before it: 25 hourly buckets, their
/// running sum and a bit per bucket that holds an hour inside the window. A check reads one slot
/// (the header) and the buckets whose hour left the window since the last update (each amount is
/// read once when it leaves); adding writes the header and the current hour's bucket.
struct RollingWindow {
    uint160 total; // sum of the live buckets as of `hour`
    uint64 hour; // block.timestamp / 1 hours at the last update
    uint32 live; // bit i: buckets[i] holds the amount of an hour inside the window
    uint256[25] buckets; // the amount of hour h at h % 25
}

uint256 constant WINDOW_BUCKETS = 25;

/// The bit of position `i` in a bit set.
function bitAt(uint256 i) pure returns (uint256) {
    // forge-lint: disable-next-line(incorrect-shift)
    return 1 << i;
}

/// The window's (sum, live bits) at `hour`, without the buckets that left it since its last update.
function windowAt(RollingWindow storage w, uint256 hour) view returns (uint256 total, uint256 live) {
    uint256 last = w.hour;
    total = w.total;
    live = w.live;
    if (hour <= last) return (total, live);
    if (hour - last >= WINDOW_BUCKETS) return (0, 0);
    for (uint256 h = last + 1; h <= hour; ++h) {
        uint256 i = h % WINDOW_BUCKETS;
        if (live & bitAt(i) != 0) {
            total -= w.buckets[i];
            live &= ~bitAt(i);
        }
    }
}

/// What `w` counts at `timestamp`.
function windowSum(RollingWindow storage w, uint256 timestamp) view returns (uint256 total) {
    (total,) = windowAt(w, timestamp / 1 hours);
}

/// Counts `amount` at `timestamp` unless the window's sum would then exceed `limit`.
/// @return added whether it was counted
/// @return wouldBe the sum with `amount`
function windowAdd(RollingWindow storage w, uint256 timestamp, uint256 amount, uint256 limit)
    returns (bool added, uint256 wouldBe)
{
    uint256 hour = timestamp / 1 hours;
    if (hour < w.hour) hour = w.hour; // a clock that went back counts in the latest hour
    (uint256 total, uint256 live) = windowAt(w, hour);
    wouldBe = total + amount;
    if (wouldBe > limit) return (false, wouldBe);
    uint256 i = hour % WINDOW_BUCKETS;
    w.buckets[i] = (live & bitAt(i) != 0 ? w.buckets[i] : 0) + amount;
    w.total = SafeCast.toUint160(wouldBe);
    w.hour = SafeCast.toUint64(hour);
    // casting to uint32 is safe: `live` has only the low 25 bits
    // forge-lint: disable-next-line(unsafe-typecast)
    w.live = uint32(live | bitAt(i));
    return (true, wouldBe);
}

// -------------------------------------------------------------------- the vault

/// @title DPG custody vault
/// @notice Holds the exchange's on-chain funds: ETH and ERC-20 tokens.
///
/// Deposits: anyone deposits for an exchange account (`uint64`, never 0). Each deposit emits
/// `Deposit` with a unique id, keccak256(abi.encode(chainid, vault, nonce)), and the amount that
/// actually arrived (a fee-on-transfer token is credited what the vault received, or refused
/// when `refuseFeeTokens[token]` is set). Plain ETH transfers without an account are refused.
///
/// Withdrawals need 3 distinct signatures of the 5 current signers over EIP-712 typed data
/// (domain "DPG Vault", version "1", this chain id and this vault's address); the signed terms
/// carry the exchange account withdrawing. Signatures are passed sorted by signer address,
/// strictly ascending, which makes "distinct" a comparison. Every id is used once: it is paid, or
/// queued (and later paid or cancelled), never both and never twice. The signed `deadline` bounds
/// when `withdraw` may be called; a withdrawal queued in time stays executable after its deadline.
///
/// Rolling windows: what is counted against a limit is what was paid in the current hour and the
/// 24 whole hours before it (a `RollingWindow` of 25 hourly buckets), so that no 24 hours, however
/// placed, pay more than the limit; an amount leaves the window 24 to 25 hours after it was paid.
///
/// Time-lock: a withdrawal is queued instead of paid when what its account has withdrawn of the
/// token without a time-lock within the rolling window, plus its amount, would exceed
/// `largeThreshold[token]` (0 = no time-lock): splitting a large payment into small ones does not
/// avoid it. A queued withdrawal can be paid by anyone through `executeQueued` once `timelock`
/// seconds have passed, unless it is cancelled first.
///
/// Daily limit: `dailyLimit[token]` (0 = unlimited) caps what is paid out of a token, all accounts
/// together, within the rolling window, counted when the funds leave (queued withdrawals when
/// executed). A payment that would exceed it reverts and can be retried once earlier payments
/// have left the window (or after the signers raise the limit).
///
/// Who cancels a queued withdrawal: any current signer or the guardian (`cancelQueued`, also while
/// paused). And a signer change invalidates it: a queued withdrawal remembers the signer set
/// (`signerEpoch`) and which of its signers approved it; if one of them is no longer a signer,
/// `executeQueued` (anyone, any time) cancels it instead of paying it (`WithdrawalInvalidated`).
///
/// Pause: the guardian pauses (deposits, withdrawals and queued executions stop). Who unpauses:
/// only 3 of the 5 current signers, with a signed `unpause`; the guardian cannot, so a stolen
/// guardian key can freeze the vault but never reopen it. Cancelling a queued withdrawal and every
/// signed administrative call still work while paused.
///
/// Administration (signer set, per-token limits, guardian, unpause) takes 3 signer signatures
/// over EIP-712 typed data carrying `adminNonce` (each signed change is usable once, in order)
/// and a deadline. The time-lock itself is fixed at deployment.
///
/// Governance: once the deployer has named the vault's `governance` (the DPG timelock,
/// `setGovernance`), the per-token limits and the guardian change only through it
/// (`governedConfigure`, `governedSetGuardian`; and the escape periods, `setEscapePeriods`): the
/// signers' `configure` and `setGuardian` are refused (`Governed`). The signers keep the signer
/// set, unpause and cancelling; the guardian keeps pause.
///
/// Escape hatch (`EscapeHatch`, docs/escape-hatch.md): a user's exit address can force a
/// withdrawal with its proof-of-reserves leaf; an ordinary withdrawal of that account and token to
/// the exit address serves it at once (no time-lock, no daily limit), as does a signed zero answer.
/// A request left unserved past `forcedGrace`, or a registry silent for `silencePeriod`, lets
/// anyone freeze the vault for good: deposits, withdrawals and queued executions stop, and each
/// account's exit address claims its balance of the frozen epoch, corrected by what the account
/// deposited and was paid since.
contract Vault is EIP712, Pausable, EscapeHatch {
    using SafeERC20 for IERC20;

    // ---------------------------------------------------------------- constants

    uint256 public constant SIGNER_COUNT = 5;
    uint256 public constant THRESHOLD = 3;
    uint256 public constant MAX_TIMELOCK = 30 days;

    bytes32 public constant WITHDRAWAL_TYPEHASH =
        keccak256("Withdrawal(bytes32 id,uint64 account,address token,address to,uint256 amount,uint256 deadline)");
    bytes32 public constant CHANGE_SIGNERS_TYPEHASH =
        keccak256("ChangeSigners(address[5] signers,uint256 nonce,uint256 deadline)");
    bytes32 public constant CONFIGURE_TYPEHASH = keccak256(
        "Configure(address token,uint256 largeThreshold,uint256 dailyLimit,bool refuseFeeTokens,uint256 nonce,uint256 deadline)"
    );
    bytes32 public constant SET_GUARDIAN_TYPEHASH =
        keccak256("SetGuardian(address guardian,uint256 nonce,uint256 deadline)");
    bytes32 public constant UNPAUSE_TYPEHASH = keccak256("Unpause(uint256 nonce,uint256 deadline)");

    // ---------------------------------------------------------------- types

    struct Withdrawal {
        bytes32 id;
        uint64 account;
        address token; // address(0) for ETH
        address to;
        uint256 amount;
        uint256 deadline;
    }

    /// Per-token settings, in the constructor and in `configure`.
    struct TokenConfig {
        address token; // address(0) for ETH
        uint256 largeThreshold; // amounts above it are time-locked; 0 = none is
        uint256 dailyLimit; // most paid out per UTC day; 0 = unlimited
        bool refuseFeeTokens; // refuse a deposit of which less arrives than was sent
    }

    enum Status {
        None,
        Queued,
        Executed,
        Cancelled
    }

    /// A time-locked withdrawal, in 3 storage slots.
    struct QueuedWithdrawal {
        address token;
        uint64 account;
        uint32 signerEpoch; // the signer set that approved it
        address to;
        uint64 executableAt;
        uint8 approvers; // bit i: signer i of that set signed it
        uint256 amount;
    }

    // ---------------------------------------------------------------- state

    /// Seconds a queued (large) withdrawal waits before `executeQueued`.
    uint256 public immutable timelock;

    address public guardian;
    /// The current signer set's number: 0 at deployment, one more at each `changeSigners`.
    uint32 public signerEpoch;
    mapping(uint256 epoch => address[5]) private _signerSets;
    /// 1 + the signer's index in the current set; 0 for an address that is not a signer.
    mapping(address => uint256) private _signerSlot;

    /// Nonce of the next signed administrative call (changeSigners, configure, setGuardian, unpause).
    uint256 public adminNonce;
    /// Number of deposits so far; the next deposit id is derived from it.
    uint256 public depositNonce;

    mapping(address token => uint256) public largeThreshold;
    mapping(address token => uint256) public dailyLimit;
    mapping(address token => bool) public refuseFeeTokens;
    /// Paid out per token within the rolling window (for the daily limit).
    mapping(address token => RollingWindow) private _outflow;
    /// Paid without a time-lock per account and token within the rolling window (for the time-lock).
    mapping(uint64 account => mapping(address token => RollingWindow)) private _accountOutflow;

    mapping(bytes32 id => Status) public status;
    mapping(bytes32 id => QueuedWithdrawal) public queued;

    // ---------------------------------------------------------------- events

    event Deposit(bytes32 indexed depositId, uint64 indexed account, address indexed token, uint256 amount);
    event WithdrawalQueued(bytes32 id, uint256 executableAt);
    event WithdrawalExecuted(bytes32 id, uint64 account, address token, address to, uint256 amount);
    event WithdrawalCancelled(bytes32 id, address by);
    /// A queued withdrawal cancelled because `signer`, who approved it, is no longer a signer.
    event WithdrawalInvalidated(bytes32 id, address signer);
    event SignersChanged(address[5] signers);
    event LimitsChanged(address indexed token, uint256 largeThreshold, uint256 dailyLimit, bool refuseFeeTokens);
    event GuardianChanged(address guardian);

    // ---------------------------------------------------------------- errors

    error ZeroAmount();
    error ZeroAccount();
    error FeeOnTransferRefused(address token, uint256 sent, uint256 received);
    error InvalidSignerSet();
    error WrongSignatureCount(uint256 count);
    error InvalidSignature(uint256 index);
    error NotASigner(address signer);
    error SignersNotAscending(uint256 index);
    error WrongNonce(uint256 expected, uint256 given);
    error AlreadyUsed(bytes32 id);
    error NotQueued(bytes32 id);
    error TimelockActive(bytes32 id, uint256 executableAt);
    error DailyLimitExceeded(address token, uint256 limit, uint256 wouldBe);
    error InsufficientHoldings(address token, uint256 holdings, uint256 amount);
    error EthTransferFailed(address to, uint256 amount);
    error Unauthorized(address caller);
    error InvalidTimelock(uint256 timelock);
    /// The signers' `configure` and `setGuardian` once the vault has a governance.
    error Governed(address governance);

    // ---------------------------------------------------------------- construction

    /// @param forcedGrace_ seconds the exchange has to serve a forced withdrawal (7 days by default)
    /// @param silencePeriod_ seconds without a proof-of-reserves publication before a freeze (72 h by default)
    constructor(
        address[5] memory signers_,
        address guardian_,
        uint256 timelock_,
        uint256 forcedGrace_,
        uint256 silencePeriod_,
        TokenConfig[] memory configs
    ) EIP712("DPG Vault", "1") EscapeHatch(forcedGrace_, silencePeriod_) {
        if (timelock_ > MAX_TIMELOCK) revert InvalidTimelock(timelock_);
        _setSigners(signers_);
        _setGuardian(guardian_);
        timelock = timelock_;
        for (uint256 i; i < configs.length; ++i) {
            _configure(configs[i]);
        }
    }

    /// Plain ETH transfers carry no account: refused (use depositETH).
    receive() external payable {
        revert ZeroAccount();
    }

    // ---------------------------------------------------------------- deposits

    function depositETH(uint64 account)
        external
        payable
        nonReentrant
        whenNotPaused
        whenNotFrozen
        returns (bytes32 depositId)
    {
        if (msg.value == 0) revert ZeroAmount();
        if (account == 0) revert ZeroAccount();
        _countDeposit(account, address(0), msg.value);
        depositId = _nextDepositId();
        emit Deposit(depositId, account, address(0), msg.value);
    }

    function depositToken(address token, uint256 amount, uint64 account)
        external
        nonReentrant
        whenNotPaused
        whenNotFrozen
        returns (bytes32 depositId)
    {
        if (token == address(0)) revert ZeroAddress();
        if (amount == 0) revert ZeroAmount();
        if (account == 0) revert ZeroAccount();
        IERC20 erc20 = IERC20(token);
        uint256 before = erc20.balanceOf(address(this));
        erc20.safeTransferFrom(msg.sender, address(this), amount);
        uint256 received = erc20.balanceOf(address(this)) - before;
        if (received != amount && refuseFeeTokens[token]) revert FeeOnTransferRefused(token, amount, received);
        if (received == 0) revert ZeroAmount();
        _countDeposit(account, token, received);
        depositId = _nextDepositId();
        emit Deposit(depositId, account, token, received);
    }

    // ---------------------------------------------------------------- withdrawals

    /// Pays `w` now, or queues it when what its account withdrew of the token without a time-lock
    /// within the rolling window, plus `w.amount`, is above the token's large threshold. A
    /// withdrawal to the exit address of an open forced withdrawal request of its account and
    /// token serves that request and is paid now, without time-lock or daily limit.
    /// @return paid true when paid now, false when queued
    function withdraw(Withdrawal calldata w, bytes[] calldata signatures)
        external
        nonReentrant
        whenNotPaused
        whenNotFrozen
        returns (bool paid)
    {
        if (block.timestamp > w.deadline) revert Expired(w.deadline);
        if (status[w.id] != Status.None) revert AlreadyUsed(w.id);
        if (w.amount == 0) revert ZeroAmount();
        if (w.account == 0) revert ZeroAccount();
        if (w.to == address(0)) revert ZeroAddress();
        uint256 approvers = _checkSignatures(_withdrawalStructHash(w), signatures);

        if (_serveByWithdrawal(w.account, w.token, w.to, w.id) != bytes32(0)) {
            status[w.id] = Status.Executed;
            _pay(w.id, w.account, w.token, w.to, w.amount, false);
            return true;
        }
        uint256 large = largeThreshold[w.token];
        if (large != 0 && !_underTimelockThreshold(w, large)) {
            // casting to uint64 is safe: a timestamp plus at most 30 days fits for 500 billion years
            // forge-lint: disable-next-line(unsafe-typecast)
            uint64 executableAt = uint64(block.timestamp + timelock);
            status[w.id] = Status.Queued;
            queued[w.id] = QueuedWithdrawal({
                token: w.token,
                account: w.account,
                signerEpoch: signerEpoch,
                to: w.to,
                executableAt: executableAt,
                // casting to uint8 is safe: one bit per signer, 5 signers
                // forge-lint: disable-next-line(unsafe-typecast)
                approvers: uint8(approvers),
                amount: w.amount
            });
            emit WithdrawalQueued(w.id, executableAt);
            return false;
        }
        status[w.id] = Status.Executed;
        _pay(w.id, w.account, w.token, w.to, w.amount, true);
        return true;
    }

    /// Pays a queued withdrawal once its time-lock has passed; or, when a signer who approved it
    /// has left the signer set since, cancels it (at any time). Anyone may call it.
    function executeQueued(bytes32 id) external nonReentrant whenNotPaused whenNotFrozen {
        if (status[id] != Status.Queued) revert NotQueued(id);
        QueuedWithdrawal memory q = queued[id];
        address departed = _departedApprover(q);
        if (departed != address(0)) {
            status[id] = Status.Cancelled;
            delete queued[id];
            emit WithdrawalInvalidated(id, departed);
            return;
        }
        if (block.timestamp < q.executableAt) revert TimelockActive(id, q.executableAt);
        status[id] = Status.Executed;
        delete queued[id];
        _pay(id, q.account, q.token, q.to, q.amount, true);
    }

    /// A signer or the guardian cancels a queued withdrawal (also while paused).
    function cancelQueued(bytes32 id) external nonReentrant {
        if (!isSigner(msg.sender) && msg.sender != guardian) revert Unauthorized(msg.sender);
        if (status[id] != Status.Queued) revert NotQueued(id);
        status[id] = Status.Cancelled;
        delete queued[id];
        emit WithdrawalCancelled(id, msg.sender);
    }

    // ---------------------------------------------------------------- administration

    function changeSigners(address[5] calldata newSigners, uint256 nonce, uint256 deadline, bytes[] calldata signatures)
        external
        nonReentrant
    {
        _checkAdmin(
            keccak256(abi.encode(CHANGE_SIGNERS_TYPEHASH, keccak256(abi.encode(newSigners)), nonce, deadline)),
            nonce,
            deadline,
            signatures
        );
        address[5] storage old = _signerSets[signerEpoch];
        for (uint256 i; i < SIGNER_COUNT; ++i) {
            _signerSlot[old[i]] = 0;
        }
        ++signerEpoch;
        _setSigners(newSigners);
    }

    function configure(TokenConfig calldata c, uint256 nonce, uint256 deadline, bytes[] calldata signatures)
        external
        nonReentrant
    {
        _notGoverned();
        _checkAdmin(
            keccak256(
                abi.encode(
                    CONFIGURE_TYPEHASH, c.token, c.largeThreshold, c.dailyLimit, c.refuseFeeTokens, nonce, deadline
                )
            ),
            nonce,
            deadline,
            signatures
        );
        _configure(c);
    }

    function setGuardian(address newGuardian, uint256 nonce, uint256 deadline, bytes[] calldata signatures)
        external
        nonReentrant
    {
        _notGoverned();
        if (newGuardian == address(0)) revert ZeroAddress();
        _checkAdmin(
            keccak256(abi.encode(SET_GUARDIAN_TYPEHASH, newGuardian, nonce, deadline)), nonce, deadline, signatures
        );
        _setGuardian(newGuardian);
    }

    /// Governance (the DPG timelock) sets a token's time-lock threshold, daily limit and
    /// fee-on-transfer rule.
    function governedConfigure(TokenConfig calldata c) external onlyGovernance {
        _configure(c);
    }

    /// Governance (the DPG timelock) names the guardian.
    function governedSetGuardian(address newGuardian) external onlyGovernance {
        _setGuardian(newGuardian);
    }

    /// The guardian stops deposits, withdrawals and queued executions.
    function pause() external {
        if (msg.sender != guardian) revert Unauthorized(msg.sender);
        _pause();
    }

    /// 3 of the 5 signers resume the vault (the guardian alone cannot).
    function unpause(uint256 nonce, uint256 deadline, bytes[] calldata signatures) external nonReentrant {
        _checkAdmin(keccak256(abi.encode(UNPAUSE_TYPEHASH, nonce, deadline)), nonce, deadline, signatures);
        _unpause();
    }

    // ---------------------------------------------------------------- views

    /// What the vault holds of `token` (address(0): ETH).
    function holdings(address token) public view override returns (uint256) {
        return token == address(0) ? address(this).balance : IERC20(token).balanceOf(address(this));
    }

    function domainSeparator() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    /// The current signers.
    function signers() external view returns (address[5] memory) {
        return _signerSets[signerEpoch];
    }

    /// The signers of set number `epoch` (see `signerEpoch`).
    function signersAt(uint32 epoch) external view returns (address[5] memory) {
        return _signerSets[epoch];
    }

    function isSigner(address who) public view returns (bool) {
        return _signerSlot[who] != 0;
    }

    function executed(bytes32 id) external view returns (bool) {
        return status[id] == Status.Executed;
    }

    /// The EIP-712 digest the signers sign for `w`.
    function withdrawalDigest(Withdrawal calldata w) external view returns (bytes32) {
        return _hashTypedDataV4(_withdrawalStructHash(w));
    }

    /// What was paid out of `token` within the rolling window (counted while it has a daily limit).
    function outflow(address token) public view returns (uint256) {
        return windowSum(_outflow[token], block.timestamp);
    }

    /// What may still be paid out of `token` now (type(uint256).max when unlimited).
    function remainingOutflow(address token) external view returns (uint256) {
        uint256 limit = dailyLimit[token];
        if (limit == 0) return type(uint256).max;
        uint256 spent = outflow(token);
        return spent >= limit ? 0 : limit - spent;
    }

    /// What `account` withdrew of `token` without a time-lock within the rolling window (counted
    /// while the token has a large threshold).
    function accountOutflow(uint64 account, address token) external view returns (uint256) {
        return windowSum(_accountOutflow[account][token], block.timestamp);
    }

    // ---------------------------------------------------------------- internals

    function _nextDepositId() private returns (bytes32) {
        return keccak256(abi.encode(block.chainid, address(this), depositNonce++));
    }

    function _withdrawalStructHash(Withdrawal calldata w) private pure returns (bytes32) {
        return keccak256(abi.encode(WITHDRAWAL_TYPEHASH, w.id, w.account, w.token, w.to, w.amount, w.deadline));
    }

    /// Pays a withdrawal; `limited`: counted against (and refused above) the token's daily limit.
    function _pay(bytes32 id, uint64 account, address token, address to, uint256 amount, bool limited) private {
        uint256 held = holdings(token);
        if (amount > held) revert InsufficientHoldings(token, held, amount);
        uint256 limit = dailyLimit[token];
        if (limited && limit != 0) {
            (bool added, uint256 wouldBe) = windowAdd(_outflow[token], block.timestamp, amount, limit);
            if (!added) revert DailyLimitExceeded(token, limit, wouldBe);
        }
        _countPayment(account, token, amount);
        emit WithdrawalExecuted(id, account, token, to, amount);
        _transferOut(token, to, amount);
    }

    function _transferOut(address token, address to, uint256 amount) internal override {
        if (token == address(0)) {
            (bool ok,) = to.call{value: amount}("");
            if (!ok) revert EthTransferFailed(to, amount);
        } else {
            IERC20(token).safeTransfer(to, amount);
        }
    }

    function _checkAdmin(bytes32 structHash, uint256 nonce, uint256 deadline, bytes[] calldata signatures) private {
        if (block.timestamp > deadline) revert Expired(deadline);
        if (nonce != adminNonce) revert WrongNonce(adminNonce, nonce);
        _checkSignatures(structHash, signatures);
        adminNonce = nonce + 1;
    }

    /// Whether `w` stays within its account's time-lock threshold `large` in the rolling window;
    /// if so its amount is counted there.
    function _underTimelockThreshold(Withdrawal calldata w, uint256 large) private returns (bool) {
        if (w.amount > large) return false;
        (bool added,) = windowAdd(_accountOutflow[w.account][w.token], block.timestamp, w.amount, large);
        return added;
    }

    /// A signer who approved `q` and is no longer a signer; address(0) when every one still is.
    function _departedApprover(QueuedWithdrawal memory q) private view returns (address) {
        if (q.signerEpoch == signerEpoch) return address(0);
        address[5] storage set = _signerSets[q.signerEpoch];
        for (uint256 i; i < SIGNER_COUNT; ++i) {
            if (q.approvers & bitAt(i) != 0 && !isSigner(set[i])) return set[i];
        }
        return address(0);
    }

    /// Reverts unless `signatures` are 3 to 5 valid signatures of current signers over the typed
    /// data `structHash`, sorted by signer address, strictly ascending (so all distinct).
    /// @return approvers bit i set when signer i of the current set signed
    function _checkSignatures(bytes32 structHash, bytes[] calldata signatures)
        internal
        view
        override
        returns (uint256 approvers)
    {
        uint256 n = signatures.length;
        if (n < THRESHOLD || n > SIGNER_COUNT) revert WrongSignatureCount(n);
        bytes32 digest = _hashTypedDataV4(structHash);
        address previous;
        for (uint256 i; i < n; ++i) {
            (address signer, ECDSA.RecoverError err,) = ECDSA.tryRecoverCalldata(digest, signatures[i]);
            if (err != ECDSA.RecoverError.NoError) revert InvalidSignature(i);
            uint256 slot = _signerSlot[signer];
            if (slot == 0) revert NotASigner(signer);
            if (signer <= previous) revert SignersNotAscending(i);
            previous = signer;
            approvers |= bitAt(slot - 1);
        }
    }

    function _setSigners(address[5] memory newSigners) private {
        for (uint256 i; i < SIGNER_COUNT; ++i) {
            address s = newSigners[i];
            if (s == address(0) || _signerSlot[s] != 0) revert InvalidSignerSet();
            _signerSlot[s] = i + 1;
        }
        _signerSets[signerEpoch] = newSigners;
        emit SignersChanged(newSigners);
    }

    function _notGoverned() private view {
        if (governance != address(0)) revert Governed(governance);
    }

    function _setGuardian(address newGuardian) private {
        if (newGuardian == address(0)) revert ZeroAddress();
        guardian = newGuardian;
        emit GuardianChanged(newGuardian);
    }

    function _configure(TokenConfig memory c) private {
        largeThreshold[c.token] = c.largeThreshold;
        dailyLimit[c.token] = c.dailyLimit;
        refuseFeeTokens[c.token] = c.refuseFeeTokens;
        emit LimitsChanged(c.token, c.largeThreshold, c.dailyLimit, c.refuseFeeTokens);
    }
}
