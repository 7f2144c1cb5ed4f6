// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {Create2} from "@openzeppelin/contracts/utils/Create2.sol";
import {DepositForwarder} from "./DepositForwarder.sol";

/// @title Deposit addresses: a forwarder per exchange account at a CREATE2 address
/// @notice `addressOf(account)` is the account's deposit address on this chain, fixed by this
/// factory's address, the forwarder implementation and the account (the salt), and known before
/// anything is deployed there: ETH and tokens sent to it wait at the address. `deploy(account)`
/// puts the forwarder there (anyone may; it only ever forwards to the vault for that account),
/// and `sweep(account, tokens)` deploys it when needed and moves the listed balances into the
/// vault in one transaction. Sweeping an empty balance does nothing.
///
/// The forwarder is a minimal proxy of `implementation` (EIP-1167) with one addition in front: a
/// call without calldata stops at once, accepting the ETH without delegating. A plain EIP-1167
/// clone would spend 2,600 gas on its cold DELEGATECALL and fail a Solidity `transfer` (2,300 gas);
/// this one takes 15. Runtime (51 bytes):
///
///     36 600557 00 5b                      CALLDATASIZE, jump over STOP when there is calldata
///     363d3d373d3d3d363d73 <impl> 5af4     EIP-1167: copy calldata, DELEGATECALL implementation
///     3d82803e903d91603157fd5bf3           return or revert with the returned data
///
/// behind a 10-byte constructor that returns it (`3d603380600a3d3981f3`).
contract ForwarderFactory {
    /// The vault every forwarder deposits into.
    address public immutable vault;
    /// The forwarder logic every proxy delegates to (deployed by this factory).
    address public immutable implementation;
    /// keccak256 of the proxies' creation code: with this factory's address and the account as
    /// salt, it fixes every deposit address (CREATE2).
    bytes32 public immutable forwarderCodeHash;

    event ForwarderDeployed(uint64 indexed account, address forwarder);

    error ZeroAccount();

    constructor(address vault_) {
        vault = vault_;
        implementation = address(new DepositForwarder(vault_));
        forwarderCodeHash = keccak256(forwarderCode());
    }

    /// The creation code of every forwarder proxy (the same for all accounts).
    function forwarderCode() public view returns (bytes memory) {
        return abi.encodePacked(
            hex"3d603380600a3d3981f3", // constructor: return the 51 bytes after it
            hex"36600557005b", // no calldata: stop (plain ETH is accepted)
            hex"363d3d373d3d3d363d73",
            implementation,
            hex"5af43d82803e903d91603157fd5bf3"
        );
    }

    /// The deposit address of `account` on this chain, deployed or not.
    function addressOf(uint64 account) public view returns (address) {
        return Create2.computeAddress(bytes32(uint256(account)), forwarderCodeHash);
    }

    /// Deploys the forwarder of `account` (once; later calls return it).
    function deploy(uint64 account) public returns (address forwarder) {
        if (account == 0) revert ZeroAccount();
        forwarder = addressOf(account);
        if (forwarder.code.length != 0) return forwarder;
        Create2.deploy(0, bytes32(uint256(account)), forwarderCode());
        DepositForwarder(payable(forwarder)).initialize(account);
        emit ForwarderDeployed(account, forwarder);
    }

    /// Deploys the forwarder of `account` if needed and sweeps each of `tokens` into the vault
    /// (address(0): the native coin). Anyone may call it.
    function sweep(uint64 account, address[] calldata tokens) external returns (address forwarder) {
        forwarder = deploy(account);
        DepositForwarder f = DepositForwarder(payable(forwarder));
        for (uint256 i; i < tokens.length; ++i) {
            if (tokens[i] == address(0)) f.sweepETH();
            else f.sweepToken(IERC20(tokens[i]));
        }
    }
}
