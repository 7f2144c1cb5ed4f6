// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {TestBase} from "./utils/TestBase.sol";
import {DPGToken} from "../src/DPGToken.sol";
import {DevToken} from "../src/DevToken.sol";
import {FeeToken} from "../src/FeeToken.sol";

contract TokensTest is TestBase {
    function test_DPGToken_FixedSupplyToDeployer() public {
        address deployer = address(0xD3);
        vm.prank(deployer);
        DPGToken t = new DPGToken(1_000_000_000 ether);
        vm.assertEq(t.totalSupply(), 1_000_000_000 ether, "supply");
        vm.assertEq(t.balanceOf(deployer), 1_000_000_000 ether, "deployer");
        vm.assertEq(t.decimals(), 18, "decimals");
        vm.assertEq(keccak256(bytes(t.name())), keccak256("DPG"), "name");
        vm.assertEq(keccak256(bytes(t.symbol())), keccak256("DPG"), "symbol");
    }

    function test_DPGToken_Permit() public {
        uint256 ownerKey = 0xA11CE;
        address owner = vm.addr(ownerKey);
        address spender = address(0x5BE);
        vm.prank(owner);
        DPGToken t = new DPGToken(100 ether);
        uint256 deadline = block.timestamp + 1 hours;
        bytes32 structHash = keccak256(
            abi.encode(
                keccak256("Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)"),
                owner,
                spender,
                40 ether,
                0,
                deadline
            )
        );
        bytes32 domain = keccak256(
            abi.encode(
                keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"),
                keccak256("DPG"),
                keccak256("1"),
                block.chainid,
                address(t)
            )
        );
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(ownerKey, keccak256(abi.encodePacked("\x19\x01", domain, structHash)));
        t.permit(owner, spender, 40 ether, deadline, v, r, s);
        vm.assertEq(t.allowance(owner, spender), 40 ether, "allowance");
        vm.prank(spender);
        t.transferFrom(owner, spender, 40 ether);
        vm.assertEq(t.balanceOf(spender), 40 ether, "spender");
        vm.expectRevert(); // the nonce moved on: no replay
        t.permit(owner, spender, 40 ether, deadline, v, r, s);
    }

    function test_FeeToken_TakesOnePercent() public {
        FeeToken t = new FeeToken("Fee", "FEE", 6);
        t.mint(address(this), 1000);
        t.transfer(address(0xB0B), 1000);
        vm.assertEq(t.balanceOf(address(0xB0B)), 990, "received");
        vm.assertEq(t.totalSupply(), 990, "fee burned");
        vm.assertEq(t.decimals(), 6, "decimals");
    }

    function testFuzz_DevTokenDecimals(uint8 decimals, uint256 amount) public {
        DevToken t = new DevToken("Dev", "DEV", decimals);
        t.mint(address(0xB0B), amount);
        vm.assertEq(t.decimals(), decimals, "decimals");
        vm.assertEq(t.balanceOf(address(0xB0B)), amount, "minted");
    }
}
