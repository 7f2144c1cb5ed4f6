// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";

/// The two deposit calls of the DPG Vault a forwarder makes.
interface IDepositVault {
    function depositETH(uint64 account) external payable returns (bytes32 depositId);
    function depositToken(address token, uint256 amount, uint64 account) external returns (bytes32 depositId);
}

/// @title One exchange account's deposit address (the logic behind its proxy)
/// @notice Each account has a proxy of this contract at a CREATE2 address of the
/// `ForwarderFactory` (see there), known before anything is deployed. Plain ETH and any ERC-20
/// can be sent to it from anywhere: the proxy accepts a call without calldata itself, and a
/// token transfer needs nothing from the receiver. `sweepETH` and `sweepToken` move the whole
/// balance into the vault, tagged with the account, through the vault's own `depositETH` and
/// `depositToken`: the only place funds can go. The vault is an immutable of this implementation,
/// the account is set once by the factory that deployed the proxy, and there is no owner, no
/// upgrade and no other call out, so anyone may sweep: nobody can redirect the funds.
contract DepositForwarder {
    using SafeERC20 for IERC20;

    /// The vault every sweep deposits into.
    address public immutable vault;
    /// The factory that deploys and initializes the proxies.
    address public immutable factory;
    /// The exchange account the funds are deposited for; set once, in the proxy's storage (0 in
    /// this implementation itself, which therefore never accepts or sweeps anything).
    uint64 public account;

    error ZeroAddress();
    error ZeroAccount();
    error NotFactory(address caller);
    error AlreadyInitialized(uint64 account);
    error NotInitialized();

    constructor(address vault_) {
        if (vault_ == address(0)) revert ZeroAddress();
        vault = vault_;
        factory = msg.sender;
    }

    /// The factory sets the account of a proxy it has just deployed (in the same transaction).
    function initialize(uint64 account_) external {
        if (msg.sender != factory) revert NotFactory(msg.sender);
        if (account != 0) revert AlreadyInitialized(account);
        if (account_ == 0) revert ZeroAccount();
        account = account_;
    }

    /// Plain ETH never gets here in a proxy (it stops before delegating); ETH sent with calldata
    /// (a note some wallets add) does, and is accepted. The implementation itself refuses both.
    receive() external payable {
        _account();
    }

    fallback() external payable {
        _account();
    }

    /// Deposits the whole ETH balance into the vault for the account; nothing when there is none.
    /// @return amount what was deposited
    function sweepETH() external returns (uint256 amount) {
        uint64 a = _account();
        amount = address(this).balance;
        if (amount != 0) IDepositVault(vault).depositETH{value: amount}(a);
    }

    /// Deposits the whole balance of `token` into the vault for the account; nothing when there is
    /// none. Tokens without return values and those that want the allowance at zero before a new
    /// one (USDT) are handled (SafeERC20, forceApprove); the vault takes exactly the allowance.
    /// @return amount what the forwarder sent (the vault credits what arrives)
    function sweepToken(IERC20 token) external returns (uint256 amount) {
        uint64 a = _account();
        amount = token.balanceOf(address(this));
        if (amount != 0) {
            token.forceApprove(vault, amount);
            IDepositVault(vault).depositToken(address(token), amount, a);
        }
    }

    function _account() private view returns (uint64 a) {
        a = account;
        if (a == 0) revert NotInitialized();
    }
}
