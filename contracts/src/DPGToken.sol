// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";

/// @title DPG, the exchange's token
/// @notice A fixed supply, all minted to the deployer at construction; 18 decimals; EIP-2612
/// permits (EIP-712 domain "DPG", version "1").
contract DPGToken is ERC20, ERC20Permit {
    constructor(uint256 supply) ERC20("DPG", "DPG") ERC20Permit("DPG") {
        _mint(msg.sender, supply);
    }
}
