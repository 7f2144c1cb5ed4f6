// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";
import {ERC20Votes} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Votes.sol";
import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";

/// @title DPG, the exchange's token
/// @notice A fixed supply, all minted to the deployer at construction; 18 decimals; EIP-2612
/// permits (EIP-712 domain "DPG", version "1"); ERC-5805 votes on a timestamp clock, counted by
/// DPGGovernor. A holder's tokens vote only once delegated (to the holder or to someone else).
contract DPGToken is ERC20, ERC20Permit, ERC20Votes {
    constructor(uint256 supply) ERC20("DPG", "DPG") ERC20Permit("DPG") {
        _mint(msg.sender, supply);
    }

    /// @notice Votes are checkpointed by block timestamp (seconds), not block number.
    function clock() public view override returns (uint48) {
        return uint48(block.timestamp);
    }

    // solhint-disable-next-line func-name-mixedcase
    function CLOCK_MODE() public pure override returns (string memory) {
        return "mode=timestamp";
    }

    function nonces(address owner) public view override(ERC20Permit, Nonces) returns (uint256) {
        return super.nonces(owner);
    }

    function _update(address from, address to, uint256 value) internal override(ERC20, ERC20Votes) {
        super._update(from, to, value);
    }
}
